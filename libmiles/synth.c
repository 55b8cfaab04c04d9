/*
 * synth.c — the seeded synthetic data set in the 58-column seed schema (the
 * embedded default data of Miles).
 *
 * The author's data set ("YouTube Shorts & TikTok Trends 2025") is itself
 * synthetic and was not obtained; this generator follows its data dictionary
 * and its 5 recovered rows, and PLANTS a documented ground truth: velocity
 * depends on title words (hook phrases, genre) AND on numeric features, plus
 * log-normal noise.  The exact model is in docs/data_sources.md; the numbers
 * below are the specification of that document.
 *
 * Determinism: every row is a pure function of (seed, row index) through a
 * counter-based splitmix64 stream; creators are a pure function of (seed,
 * creator index).  Only IEEE-exact operations are used (+ - * / sqrt floor
 * ldexp frexp) — exp and log are computed here by fixed polynomials, not libm —
 * so the file is bit-identical across machines and C libraries (-std=c11 keeps
 * GCC from contracting a*b+c into FMA).  Two passes: pass 1 sums each
 * creator's views (creator_avg_views is "across dataset rows"), pass 2 writes.
 */
#include "sources_internal.h"

#include <math.h>

#ifdef __FAST_MATH__
#error "synth.c must not be built with -ffast-math: the synthetic file must be bit-identical everywhere"
#endif

/* ---------------------------------------------------------------- PRNG */

typedef struct { uint64_t s; } Rng;

static uint64_t rng_next(Rng *r) { return miles_splitmix64(&r->s); }
/* independent stream per (seed, domain, index) */
static Rng rng_for(uint64_t seed, uint64_t domain, uint64_t index) {
    Rng r = {miles_mix64(seed ^ miles_mix64(domain * 0xD1B54A32D192ED03ULL + index + 1))};
    return r;
}
static double u01(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static int pick(Rng *r, int n) { return (int)(u01(r) * n); }

/* deterministic log/exp (|rel err| < 1e-15 on the ranges used) */
static const double LN2 = 0.69314718055994530942;
static double det_log(double x) {
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5,1) */
    if (m < 0.70710678118654752440) { m *= 2; e--; }
    double t = (m - 1) / (m + 1), t2 = t * t, term = t, s = 0;
    for (int k = 1; k <= 23; k += 2) { s += term / k; term *= t2; }
    return 2 * s + e * LN2;
}
static double det_exp(double x) {
    if (x > 700) x = 700;
    if (x < -700) return 0;
    double k = floor(x / LN2 + 0.5);
    double r = x - k * LN2;
    double term = 1, s = 1;
    for (int i = 1; i <= 18; i++) { term *= r / i; s += term; }
    return ldexp(s, (int)k);
}
/* standard normal: Marsaglia polar method */
static double rnorm(Rng *r) {
    for (;;) {
        double u = 2 * u01(r) - 1, v = 2 * u01(r) - 1, s = u * u + v * v;
        if (s > 0 && s < 1) return u * sqrt(-2 * det_log(s) / s);
    }
}
static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static int64_t round_i(double x) { return (int64_t)floor(x + 0.5); }
/* categorical draw from weights */
static int pick_w(Rng *r, const double *w, int n) {
    double tot = 0;
    for (int i = 0; i < n; i++) tot += w[i];
    double u = u01(r) * tot;
    for (int i = 0; i < n; i++) {
        if (u < w[i]) return i;
        u -= w[i];
    }
    return n - 1;
}

/* ---------------------------------------------------------------- tables */

typedef struct { const char *code, *region, *lang; double w; } Country;
/* English-speaking countries sum to 0.20 (the original: 19.8% "en" rows). */
static const Country COUNTRIES[] = {
    {"Us", "North America", "en", 0.08}, {"Gb", "Europe", "en", 0.04}, {"Ca", "North America", "en", 0.03},
    {"Au", "Oceania", "en", 0.03},       {"Za", "Africa", "en", 0.02},
    {"In", "Asia", "hi", 0.08},          {"Jp", "Asia", "ja", 0.06},   {"Kr", "Asia", "ko", 0.05},
    {"Br", "Latin America", "pt", 0.08}, {"Mx", "Latin America", "es", 0.06}, {"Es", "Europe", "es", 0.04},
    {"Fr", "Europe", "fr", 0.05},        {"De", "Europe", "de", 0.05}, {"Se", "Europe", "sv", 0.03},
    {"Id", "Asia", "id", 0.07},          {"Vn", "Asia", "vi", 0.05},   {"Tr", "Europe", "tr", 0.04},
    {"Eg", "Africa", "ar", 0.04},        {"Sa", "Middle East", "ar", 0.03}, {"It", "Europe", "it", 0.04},
    {"Ph", "Asia", "tl", 0.03},
};
#define N_COUNTRIES ((int)(sizeof COUNTRIES / sizeof COUNTRIES[0]))

/* Hooks: the planted title effect h (added to ln velocity).  Prefix hooks and
 * suffix hooks; a title gets a prefix with p = 0.5 and, independently, a suffix
 * with p = 0.5.  "%s" is the topic phrase.  Keep in sync with the docs. */
typedef struct { const char *pattern; double h; } Hook;
static const Hook PREFIX_HOOKS[] = {
    {"You won't believe this %s", +2.5}, {"The secret to %s", +2.0}, {"POV: %s", +1.75},
    {"Life hack: %s", +1.5},             {"Wait for it… %s", +1.25}, {"Channel update: %s", -2.0},
    {"My honest review of %s", -1.25},
};
static const Hook SUFFIX_HOOKS[] = {
    {"%s challenge", +1.5}, {"%s (insane ending)", +1.0}, {"%s | Part 2", -1.75},
    {"%s (full video)", -1.5}, {"%s vlog", -1.0}, {"%s explained", -0.75},
};
#define N_PREFIX ((int)(sizeof PREFIX_HOOKS / sizeof PREFIX_HOOKS[0]))
#define N_SUFFIX ((int)(sizeof SUFFIX_HOOKS / sizeof SUFFIX_HOOKS[0]))

typedef struct {
    const char *name;
    double g;                 /* planted genre effect on ln velocity */
    const char *hashtags[2];
    const char *tags[6];
    const char *emoji[4];
    const char *topics[8];
} Genre;
static const Genre GENRES[] = {
    {"Lifestyle", -0.1, {"#Lifestyle", "#DayInMyLife"}, {"daily", "lifestyle", "motivation", "routine", "aesthetic", "home"},
     {"🏖️", "☕", "✨", "🌙"},
     {"Night Routine — Productivity", "Morning Routine — College", "Day in my life as a nurse", "Room makeover on a budget",
      "Sunday reset routine", "What I eat in a day", "Apartment tour", "5 habits that changed my life"}},
    {"Sports", 0.0, {"#Sports", "#Workout"}, {"gym", "football", "workout", "skills", "highlights", "training"},
     {"⚽", "📱", "🏀", "🔥"},
     {"Football skills in 60s", "Basketball trick shots", "Best goals this week", "Tennis serve tutorial",
      "Skateboard tricks for beginners", "Boxing drills at home", "Volleyball highlights", "Running form tips"}},
    {"Gaming", 0.2, {"#Esports", "#Gaming"}, {"fps", "esports", "clips", "gaming", "valorant", "highlights"},
     {"🎮", "🕹️", "🔥", "😱"},
     {"Pro Tips for Valorant in 60s", "Best Settings for Fortnite", "Minecraft speedrun", "GTA 6 theory",
      "Roblox obby fails", "League of Legends outplay", "FIFA skill moves", "Elden Ring boss fight"}},
    {"Comedy", 0.3, {"#Comedy", "#Funny"}, {"comedy", "relatable", "sketch", "funny", "memes", "skit"},
     {"😂", "🤣", "💀", "😅"},
     {"When your friend is late", "Teachers be like", "Me trying to cook", "Siblings at dinner",
      "When the wifi goes down", "Office meeting energy", "My mom vs me", "Expectation vs reality"}},
    {"Food", 0.1, {"#Food", "#Recipe"}, {"food", "recipe", "cooking", "easy", "dinner", "foodie"},
     {"🍝", "🔥", "😋", "🍜"},
     {"3-ingredient pasta", "Street food in Bangkok", "Crispy air fryer chicken", "Korean corn dogs",
      "Easy banana bread", "Ramen upgrade", "Street tacos at home", "Perfect fried rice"}},
    {"Beauty", 0.0, {"#Beauty", "#Makeup"}, {"beauty", "makeup", "skincare", "grwm", "hair", "glow"},
     {"💄", "✨", "💅", "🌸"},
     {"Glowy skin makeup", "5-minute hairstyle", "Skincare routine for oily skin", "Drugstore dupes",
      "Nail art tutorial", "No-foundation makeup", "Curly hair routine", "Eyeliner for hooded eyes"}},
    {"Tech", -0.15, {"#Tech", "#Gadgets"}, {"tech", "gadgets", "iphone", "ai", "setup", "apps"},
     {"📱", "💻", "🤖", "⚡"},
     {"iPhone tips you need", "AI tools for students", "Desk setup tour", "Budget gaming PC build",
      "Android hidden features", "Best free apps", "Keyboard sound test", "Coding in 60 seconds"}},
    {"Travel", 0.05, {"#Travel", "#Wanderlust"}, {"travel", "wanderlust", "explore", "beach", "city", "tips"},
     {"✈️", "🌴", "🏖️", "🌍"},
     {"Hidden beach in Bali", "Tokyo on a budget", "Paris in 24 hours", "Best street in Lisbon",
      "Road trip essentials", "Cheap flights guide", "Packing carry-on only", "Sunrise at Santorini"}},
    {"Music", 0.1, {"#Music", "#Cover"}, {"music", "cover", "singing", "guitar", "piano", "beats"},
     {"🎸", "🎹", "🎤", "🎶"},
     {"Guitar cover", "Piano tutorial for beginners", "Singing high notes", "Beat making in FL Studio",
      "Drum solo", "Violin cover of a pop song", "Rap freestyle", "Song of the summer"}},
    {"Education", -0.3, {"#Education", "#LearnOnTikTok"}, {"education", "study", "learn", "facts", "science", "tips"},
     {"📚", "🧠", "✏️", "💡"},
     {"Math trick for exams", "Learn Spanish fast", "Study with me", "History in 60 seconds",
      "Physics experiment", "How to remember anything", "Chemistry at home", "Essay writing tips"}},
    {"Fitness", -0.05, {"#Fitness", "#Gym"}, {"fitness", "workout", "gym", "abs", "health", "training"},
     {"💪", "🔥", "🏋️", "🧘"},
     {"Home workout", "Abs in 10 minutes", "Glute workout", "Stretching routine", "Push-up progression",
      "Meal prep for gains", "Pilates for beginners", "Jump rope workout"}},
    {"Pets", 0.25, {"#Pets", "#Dogs"}, {"pets", "dog", "cat", "cute", "animals", "puppy"},
     {"🐶", "🐱", "😍", "🐾"},
     {"Cat reacts to cucumber", "Puppy first bath", "Dog learns a new trick", "Parrot talking",
      "Hamster obstacle course", "Golden retriever morning", "Kitten zoomies", "Bunny binkies"}},
};
#define N_GENRES ((int)(sizeof GENRES / sizeof GENRES[0]))
enum { G_LIFESTYLE, G_SPORTS, G_GAMING, G_COMEDY, G_FOOD, G_BEAUTY, G_TECH, G_TRAVEL, G_MUSIC, G_EDU, G_FIT, G_PETS };

/* Native-language titles: 6 topics (genres below) and the translations of
 * hooks {prefix 0 "won't believe", prefix 2 "POV", prefix 3 "hack", suffix 0
 * "challenge", suffix 2 "Part 2", prefix 5 "Channel update"}, with the same h. */
static const int NATIVE_TOPIC_GENRE[6] = {G_LIFESTYLE, G_FOOD, G_SPORTS, G_BEAUTY, G_PETS, G_TRAVEL};
typedef struct { const char *lang; const char *hooks[6]; const char *topics[6]; } Native;
static const Native NATIVE[] = {
    {"es", {"No vas a creer esto: %s", "POV: %s", "Truco: %s", "Reto: %s", "%s | Parte 2", "Actualización del canal: %s"},
     {"rutina de mañana", "receta fácil", "fútbol en 60 segundos", "maquillaje natural", "mi perro", "viaje a la playa"}},
    {"pt", {"Você não vai acreditar: %s", "POV: %s", "Truque: %s", "Desafio: %s", "%s | Parte 2", "Atualização do canal: %s"},
     {"rotina da manhã", "receita fácil", "futebol em 60 segundos", "maquiagem natural", "meu cachorro", "viagem à praia"}},
    {"fr", {"Tu ne vas pas y croire : %s", "POV: %s", "Astuce : %s", "Défi : %s", "%s | Partie 2", "Mise à jour de la chaîne : %s"},
     {"routine du matin", "recette facile", "football en 60 secondes", "maquillage naturel", "mon chien", "voyage à la plage"}},
    {"de", {"Du wirst es nicht glauben: %s", "POV: %s", "Hack: %s", "Challenge: %s", "%s | Teil 2", "Kanal-Update: %s"},
     {"Morgenroutine", "einfaches Rezept", "Fußball in 60 Sekunden", "natürliches Make-up", "mein Hund", "Strandurlaub"}},
    {"it", {"Non ci crederai: %s", "POV: %s", "Trucco: %s", "Sfida: %s", "%s | Parte 2", "Aggiornamento del canale: %s"},
     {"routine mattutina", "ricetta facile", "calcio in 60 secondi", "trucco naturale", "il mio cane", "viaggio al mare"}},
    {"sv", {"Du kommer inte tro det: %s", "POV: %s", "Knep: %s", "Utmaning: %s", "%s | Del 2", "Kanaluppdatering: %s"},
     {"morgonrutin", "enkelt recept", "fotboll på 60 sekunder", "naturlig makeup", "min hund", "strandresa"}},
    {"tr", {"İnanamayacaksın: %s", "POV: %s", "Püf noktası: %s", "Meydan okuma: %s", "%s | Bölüm 2", "Kanal güncellemesi: %s"},
     {"sabah rutini", "kolay tarif", "60 saniyede futbol", "doğal makyaj", "köpeğim", "deniz tatili"}},
    {"ja", {"信じられない%s", "POV: %s", "裏ワザ：%s", "チャレンジ：%s", "%s パート2", "チャンネルのお知らせ：%s"},
     {"朝のルーティン", "簡単レシピ", "60秒サッカー", "ナチュラルメイク", "うちの犬", "海への旅"}},
    {"ko", {"믿을 수 없는 %s", "POV: %s", "꿀팁: %s", "챌린지: %s", "%s 2부", "채널 공지: %s"},
     {"아침 루틴", "간단 레시피", "60초 축구", "내추럴 메이크업", "우리 강아지", "바다 여행"}},
    {"hi", {"यकीन नहीं होगा: %s", "POV: %s", "जुगाड़: %s", "चैलेंज: %s", "%s | भाग 2", "चैनल अपडेट: %s"},
     {"सुबह की दिनचर्या", "आसान रेसिपी", "60 सेकंड में फुटबॉल", "नेचुरल मेकअप", "मेरा कुत्ता", "समुद्र की यात्रा"}},
    {"id", {"Kamu nggak akan percaya: %s", "POV: %s", "Trik: %s", "Tantangan: %s", "%s | Bagian 2", "Update channel: %s"},
     {"rutinitas pagi", "resep mudah", "sepak bola 60 detik", "makeup natural", "anjingku", "liburan ke pantai"}},
    {"vi", {"Bạn sẽ không tin: %s", "POV: %s", "Mẹo: %s", "Thử thách: %s", "%s | Phần 2", "Cập nhật kênh: %s"},
     {"thói quen buổi sáng", "công thức dễ làm", "bóng đá 60 giây", "trang điểm tự nhiên", "chú chó của tôi", "du lịch biển"}},
    {"ar", {"لن تصدق: %s", "POV: %s", "حيلة: %s", "تحدي: %s", "%s | الجزء 2", "تحديث القناة: %s"},
     {"روتين الصباح", "وصفة سهلة", "كرة القدم في 60 ثانية", "مكياج طبيعي", "كلبي", "رحلة إلى البحر"}},
};
#define N_NATIVE ((int)(sizeof NATIVE / sizeof NATIVE[0]))
/* which (prefix?, index) each native hook slot translates */
static const int NATIVE_HOOK_IS_PREFIX[6] = {1, 1, 1, 0, 0, 1};
static const int NATIVE_HOOK_INDEX[6] = {0, 2, 3, 0, 2, 5};

static const char *const CATEGORIES[] = {"Gaming", "Food", "Art", "News", "Beauty", "Comedy", "Music", "Sports",
                                         "Education", "Tech", "Travel", "Lifestyle", "Fitness", "Pets", "DIY", "Fashion"};
static const char *const MUSIC[] = {"8bit loop", "Street vibe", "Gallery pad", "Neutral piano", "Soft glam loop",
                                    "Lo-fi morning", "Epic drums", "Chill beat", "Summer pop", "Trap hype",
                                    "Acoustic sun", "Retro synth"};
static const char *const NOTES[] = {"split-screen", "greenscreen", "subtitles", "cinematic b-roll", "text-to-speech",
                                    "voiceover", "duet", "jump cuts"};
static const char *const COMMENTS[] = {
    "This is fire 🔥", "Instant like!", "So underrated!", "Can’t stop watching 😂", "ずっと見ちゃう😂",
    "¡Qué bueno! 👏", "Incrível demais 😍", "C'est génial 👌", "Mega gut! 💯", "진짜 대박 😮", "बहुत बढ़िया 👍",
    "Keren banget 🔥", "Hay quá 😍", "رائع جدا ❤️", "Harika 👏", "Need part 2!", "Saving this for later",
    "Who else is watching in 2025?"};
static const char *const HANDLE_A[] = {"Next", "Daily", "Beyond", "Lucas", "Urban", "Pixel", "Golden", "Nova", "Chef",
                                       "Fit", "Mia", "Alex", "Sunny", "Retro", "Quick", "Epic", "Zen", "Bold", "Tiny",
                                       "Happy"};
static const char *const HANDLE_B[] = {"Vision", "VlogsDiego", "Hub", "Official", "Studio", "Kitchen", "Plays", "Beauty",
                                       "Tech", "Travels", "Life", "Media", "Clips", "Lab", "TV", "World"};
static const char *const BRANDS[] = {"Samsung", "Xiaomi", "Huawei", "Oppo", "Vivo", "Pixel", "Other"};
static const double BRAND_W[] = {0.35, 0.15, 0.12, 0.12, 0.10, 0.08, 0.08};
/* upload hour weights (evening peak) */
static const double HOUR_W[24] = {2, 1.5, 1, 0.8, 0.6, 0.6, 1, 1.5, 2, 2.5, 3, 3.5,
                                  4, 4.5, 4.5, 4.5, 5, 5.5, 6.5, 7, 7, 6, 4.5, 3};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- model */

/* Model constants (docs/data_sources.md, "generative model"). */
#define MU_VIEWS_TIKTOK 10.819778284410283 /* ln 50000 */
#define MU_VIEWS_YOUTUBE 10.308952660644293 /* ln 30000 */
#define SD_CREATOR 0.30
#define SD_VIEWS 0.35
#define P_TAIL 0.03
#define BETA_H_VIEWS 0.1    /* share of the title effect carried by views */
#define BETA_H_TREND 0.9    /* share carried by a shorter trend */
#define LN_T0 3.4011973816621555 /* ln 30 days */
#define SD_TREND 0.40
#define B_SHARE 0.20
#define B_SAVE 0.15
#define B_COMP_VIEWS 0.10
#define B_COMP_TREND 0.20
#define B_EVENING 0.30
#define B_CREATOR_TREND 0.15

typedef struct {
    double q;          /* creator quality (ln views) */
    int tiktok;        /* platform */
    int country;
} Creator;

static Creator creator_for(uint64_t seed, int64_t c) {
    Rng r = rng_for(seed, 2, (uint64_t)c);
    Creator cr;
    cr.q = SD_CREATOR * rnorm(&r);
    cr.tiktok = u01(&r) < 0.6;
    double w[N_COUNTRIES];
    for (int i = 0; i < N_COUNTRIES; i++) w[i] = COUNTRIES[i].w;
    cr.country = pick_w(&r, w, N_COUNTRIES);
    return cr;
}

static int64_t n_creators_for(int64_t rows) { return rows < 6 ? 1 : (rows + 5) / 6; }

typedef struct {
    int64_t creator;
    Creator cr;
    int genre, topic, prefix, suffix; /* prefix/suffix: -1 = none */
    int native;                       /* index into NATIVE or -1 */
    int native_slot, native_topic;
    int emoji;                        /* -1 none */
    double H;                         /* planted title effect */
    int duration, hour;
    int64_t day;                      /* days since 1970 */
    double completion;
    int64_t views, likes, comments, shares, saves, dislikes, trend_days;
    double avg_watch;
    Rng rest;                         /* stream for cosmetic columns */
} SynthRow;

/* Everything numeric about row i (both passes call this: a pure function). */
static void synth_row(uint64_t seed, int64_t i, int64_t n_creators, SynthRow *o) {
    Rng r = rng_for(seed, 1, (uint64_t)i);
    double u = u01(&r);
    o->creator = (int64_t)((double)n_creators * u * sqrt(u)); /* u^1.5: some creators post a lot */
    if (o->creator >= n_creators) o->creator = n_creators - 1;
    o->cr = creator_for(seed, o->creator);
    const char *lang = COUNTRIES[o->cr.country].lang;

    /* title: genre/topic, hooks, language, emoji */
    o->genre = pick(&r, N_GENRES);
    o->topic = pick(&r, 8);
    o->prefix = u01(&r) < 0.5 ? pick(&r, N_PREFIX) : -1;
    o->suffix = u01(&r) < 0.5 ? pick(&r, N_SUFFIX) : -1;
    o->native = -1;
    double u_native = u01(&r);
    int slot_pick = pick(&r, 7); /* native: 6 hook slots + "no hook" */
    int ntopic = pick(&r, 6);
    if (strcmp(lang, "en") != 0 && u_native < 0.5) {
        for (int k = 0; k < N_NATIVE; k++)
            if (strcmp(NATIVE[k].lang, lang) == 0) o->native = k;
    }
    if (o->native >= 0) {
        /* native titles carry at most one (translated) hook */
        o->native_slot = slot_pick < 6 ? slot_pick : -1;
        o->native_topic = ntopic;
        o->genre = NATIVE_TOPIC_GENRE[ntopic];
        o->prefix = o->suffix = -1;
        if (o->native_slot >= 0) {
            if (NATIVE_HOOK_IS_PREFIX[o->native_slot]) o->prefix = NATIVE_HOOK_INDEX[o->native_slot];
            else o->suffix = NATIVE_HOOK_INDEX[o->native_slot];
        }
    }
    o->emoji = u01(&r) < 0.5 ? pick(&r, 4) : -1;
    o->H = GENRES[o->genre].g + (o->prefix >= 0 ? PREFIX_HOOKS[o->prefix].h : 0) +
           (o->suffix >= 0 ? SUFFIX_HOOKS[o->suffix].h : 0);

    /* timing */
    o->hour = pick_w(&r, HOUR_W, 24);
    o->day = src_days_from_civil(2025, 1, 1) + pick(&r, 255); /* 2025-01-01 .. 2025-09-12 */
    double evening = (o->hour >= 18 && o->hour <= 22) ? 1.0 : 0.0;
    o->duration = o->cr.tiktok ? (int)clampd((double)round_i(det_exp(3.091042453358316 + 0.55 * rnorm(&r))), 5, 75)
                               : (int)clampd((double)round_i(det_exp(3.401197381662155 + 0.60 * rnorm(&r))), 5, 180);

    /* latent normals of the visible engagement features */
    double z_like = rnorm(&r), z_com = rnorm(&r), z_share = rnorm(&r), z_save = rnorm(&r), z_comp = rnorm(&r);
    double e_views = rnorm(&r), e_trend = rnorm(&r), tail = u01(&r) < P_TAIL ? 1.5 + 0.5 * rnorm(&r) : 0.0;

    o->completion = clampd(0.62 - 0.003 * (o->duration - 30) + 0.12 * z_comp, 0.05, 0.98);
    o->avg_watch = floor(o->completion * o->duration * 10 + 0.5) / 10;
    if (o->avg_watch < 0.1) o->avg_watch = 0.1;

    double mu = o->cr.tiktok ? MU_VIEWS_TIKTOK : MU_VIEWS_YOUTUBE;
    double ln_views = mu + o->cr.q + BETA_H_VIEWS * o->H + B_COMP_VIEWS * z_comp + SD_VIEWS * e_views + tail;
    o->views = round_i(det_exp(ln_views));
    if (o->views < 50) o->views = 50;
    double v = (double)o->views;
    o->likes = round_i(v * det_exp(-2.659260036932778 + 0.35 * z_like));   /* median 7%   */
    o->comments = round_i(v * det_exp(-4.828313737302301 + 0.50 * z_com)); /* median 0.8% */
    o->shares = round_i(v * det_exp(-5.115995809754082 + 0.50 * z_share)); /* median 0.6% */
    o->saves = round_i(v * det_exp(-4.605170185988091 + 0.50 * z_save));   /* median 1%   */
    if (o->likes > o->views) o->likes = o->views;
    o->dislikes = round_i((double)o->likes * det_exp(-3.506557897319982 + 0.40 * rnorm(&r))); /* ~3% */

    /* the planted trend speed: title effect + numeric effects + noise */
    double speed = BETA_H_TREND * o->H + B_SHARE * z_share + B_SAVE * z_save + B_COMP_TREND * z_comp +
                   B_EVENING * evening + B_CREATOR_TREND * o->cr.q;
    double t = det_exp(LN_T0 - speed + SD_TREND * e_trend);
    o->trend_days = (int64_t)clampd((double)round_i(t), 1, 365);
    o->rest = r;
}

static void build_title(const SynthRow *o, char *out, size_t cap) {
    char a[512], b[512];
    if (o->native >= 0) {
        const Native *nt = &NATIVE[o->native];
        const char *topic = nt->topics[o->native_topic];
        if (o->native_slot >= 0) snprintf(a, sizeof a, nt->hooks[o->native_slot], topic);
        else snprintf(a, sizeof a, "%s", topic);
    } else {
        const char *topic = GENRES[o->genre].topics[o->topic];
        if (o->prefix >= 0) snprintf(b, sizeof b, PREFIX_HOOKS[o->prefix].pattern, topic);
        else snprintf(b, sizeof b, "%s", topic);
        if (o->suffix >= 0) snprintf(a, sizeof a, SUFFIX_HOOKS[o->suffix].pattern, b);
        else snprintf(a, sizeof a, "%s", b);
    }
    if (o->emoji >= 0) snprintf(out, cap, "%s %s", a, GENRES[o->genre].emoji[o->emoji]);
    else snprintf(out, cap, "%s", a);
}

static const char *creator_tier(double avg) {
    return avg < 25000 ? "Micro" : avg < 250000 ? "Mid" : avg < 1000000 ? "Macro" : "Star";
}

static const char *event_season(int m, int d) {
    if (m == 1 && d <= 6) return "HolidaySeason";
    if (m == 12) return "HolidaySeason";
    if (m == 3 && d <= 30) return "Ramadan"; /* Ramadan 2025: Mar 1 - Mar 30 */
    if ((m == 6 && d >= 15) || m == 7 || m == 8) return "SummerBreak";
    if (m == 9) return "BackToSchool";
    return "Regular";
}

static int write_row(FILE *fp, SrcRow *row, uint64_t seed, int64_t i, SynthRow *o, double creator_avg) {
    Rng r = o->rest;
    const Country *ct = &COUNTRIES[o->cr.country];
    const Genre *g = &GENRES[o->genre];
    src_row_clear(row);
    src_row_str(row, SC_PLATFORM, o->cr.tiktok ? "TikTok" : "YouTube");
    src_row_str(row, SC_COUNTRY, ct->code);
    src_row_str(row, SC_REGION, ct->region);
    src_row_str(row, SC_LANGUAGE, ct->lang);
    src_row_str(row, SC_CATEGORY, u01(&r) < 0.5 ? g->name : CATEGORIES[pick(&r, NELEM(CATEGORIES))]);
    src_row_str(row, SC_HASHTAG, g->hashtags[pick(&r, 2)]);
    src_row_str(row, SC_TITLE_KEYWORDS, g->topics[pick(&r, 8)]);
    char handle[96];
    int64_t c = o->creator;
    if (c < 320) snprintf(handle, sizeof handle, "%s%s", HANDLE_A[c % 20], HANDLE_B[(c / 20) % 16]);
    else snprintf(handle, sizeof handle, "%s%s%lld", HANDLE_A[c % 20], HANDLE_B[(c / 20) % 16], (long long)(c / 320));
    src_row_str(row, SC_AUTHOR_HANDLE, handle);
    static const double SOUND_W[3] = {0.45, 0.30, 0.25};
    static const char *const SOUND[3] = {"trending", "licensed", "original"};
    src_row_str(row, SC_SOUND_TYPE, SOUND[pick_w(&r, SOUND_W, 3)]);
    src_row_str(row, SC_MUSIC_TRACK, MUSIC[pick(&r, NELEM(MUSIC))]);
    src_row_int(row, SC_DURATION_SEC, o->duration);
    src_row_rates(row, o->views, o->likes, o->comments, o->shares, o->saves, o->dislikes);
    static const double TL_W[4] = {0.30, 0.30, 0.25, 0.15};
    static const char *const TL[4] = {"rising", "stable", "declining", "seasonal"};
    src_row_str(row, SC_TREND_LABEL, TL[pick_w(&r, TL_W, 4)]);
    src_row_str(row, SC_SOURCE_HINT, u01(&r) < 0.6 ? (o->cr.tiktok ? "TikTok Creative Center" : "YouTube Trending")
                                                   : "Open Web Samples");
    src_row_str(row, SC_NOTES, NOTES[pick(&r, NELEM(NOTES))]);
    double ud = u01(&r);
    int dev = o->cr.tiktok ? (ud < 0.55 ? 0 : ud < 0.97 ? 1 : 2) : (ud < 0.50 ? 0 : ud < 0.85 ? 1 : 2);
    static const char *const DEV[3] = {"Android", "iOS", "Web"};
    src_row_str(row, SC_DEVICE_TYPE, DEV[dev]);
    src_row_str(row, SC_DEVICE_BRAND, dev == 1 ? "iPhone" : dev == 2 ? "Desktop" : BRANDS[pick_w(&r, BRAND_W, 7)]);
    static const double TS_W[4] = {0.60, 0.15, 0.15, 0.10}, YS_W[4] = {0.35, 0.35, 0.20, 0.10};
    static const char *const TS[4] = {"ForYou", "Following", "Search", "External"};
    static const char *const YS[4] = {"Home", "Suggested", "Search", "External"};
    src_row_str(row, SC_TRAFFIC_SOURCE, o->cr.tiktok ? TS[pick_w(&r, TS_W, 4)] : YS[pick_w(&r, YS_W, 4)]);
    src_row_str(row, SC_GENRE, g->name);
    src_row_int(row, SC_TREND_DURATION_DAYS, o->trend_days);
    src_row_str(row, SC_TREND_TYPE, o->trend_days <= 7 ? "Short" : o->trend_days <= 21 ? "Medium" : "Evergreen");
    src_row_fix(row, SC_ENGAGEMENT_VELOCITY, (double)o->views / (double)o->trend_days, 2);
    /* date columns (+ upload_hour, publish_period) */
    src_row_time(row, o->day * 86400 + (int64_t)o->hour * 3600, 1);
    int y, m, d;
    src_civil_from_days(o->day, &y, &m, &d);
    src_row_str(row, SC_EVENT_SEASON, event_season(m, d));
    int t1 = pick(&r, 6), t2 = (t1 + 1 + pick(&r, 5)) % 6, t3 = (t2 + 1 + pick(&r, 4)) % 6;
    if (t3 == t1) t3 = (t3 + 1) % 6;
    if (t3 == t2) t3 = (t3 + 1) % 6;
    if (t3 == t1) t3 = (t3 + 1) % 6;
    src_row_fmt(row, SC_TAGS, "%s, %s, %s", g->tags[t1], g->tags[t2], g->tags[t3]);
    src_row_str(row, SC_SAMPLE_COMMENTS, COMMENTS[pick(&r, NELEM(COMMENTS))]);
    src_row_fix(row, SC_CREATOR_AVG_VIEWS, creator_avg, 1);
    src_row_str(row, SC_CREATOR_TIER, creator_tier(creator_avg));
    char title[1024];
    build_title(o, title, sizeof title);
    MILES_TRY(src_row_title(row, title) == MILES_OK ? MILES_OK
                                                    : miles_error(MILES_EINTERNAL, "synth: bad template title"));
    src_row_fix(row, SC_AVG_WATCH_TIME_SEC, o->avg_watch, 1);
    src_row_fix(row, SC_COMPLETION_RATE, o->avg_watch / o->duration, 3);
    /* row_id: 32 hex digits from (seed, row); unique with overwhelming probability */
    Rng ri = rng_for(seed, 3, (uint64_t)i);
    uint64_t h1 = rng_next(&ri), h2 = rng_next(&ri);
    src_row_fmt(row, SC_ROW_ID, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
    return src_csv_write_row(fp, row);
}

int miles_synth_write_csv(const char *path, int64_t rows, uint64_t seed) {
    if (!path) return miles_error(MILES_EINVAL, "miles_synth_write_csv: NULL path");
    if (rows < 0 || rows > 100000000)
        return miles_error(MILES_ERANGE, "miles_synth_write_csv: rows = %lld (allowed 0..100000000)", (long long)rows);
    int64_t nc = n_creators_for(rows);
    double *sum = miles_calloc((size_t)nc, sizeof *sum);
    int64_t *cnt = miles_calloc((size_t)nc, sizeof *cnt);
    SrcRow *row = miles_malloc(sizeof *row);
    if (!sum || !cnt || !row) { free(sum); free(cnt); free(row); return MILES_ENOMEM; }
    SynthRow o;
    /* pass 1: creator means over the rows of this file */
    for (int64_t i = 0; i < rows; i++) {
        synth_row(seed, i, nc, &o);
        sum[o.creator] += (double)o.views;
        cnt[o.creator]++;
    }
    MilesAtomicFile af;
    int s = miles_atomic_open(&af, path);
    if (s != MILES_OK) { free(sum); free(cnt); free(row); return s; }
    s = src_csv_write_header(af.fp);
    for (int64_t i = 0; s == MILES_OK && i < rows; i++) {
        synth_row(seed, i, nc, &o);
        s = write_row(af.fp, row, seed, i, &o, sum[o.creator] / (double)cnt[o.creator]);
    }
    free(sum);
    free(cnt);
    free(row);
    if (s != MILES_OK) {
        miles_atomic_abort(&af);
        return miles_error_prefix(s, "%s", path);
    }
    return miles_atomic_commit(&af);
}
