/*
 * plot.c — ROC, PR, reliability and velocity plots as PNG, drawn with cairo.
 *
 * A small fixed layout: a title line, one or two plot panels with light grid
 * lines, ticks and tick labels, axis labels and a legend box.  The PNG is
 * streamed into a temporary file beside the target and renamed into place
 * (miles_atomic_open/commit), so readers never see a partial image.
 */
#include "plot.h"

#include "tool_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef MILES_HAVE_CAIRO
#include <cairo.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

/* cairo and fontconfig keep font caches for the life of the process; release
 * them at exit so that leak checkers (make asan) see a clean process.  FcFini
 * is looked up at run time because only cairo links fontconfig. */
static void release_font_caches(void) {
    cairo_debug_reset_static_data();
    void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini) fc_fini();
}
static pthread_once_t g_atexit_once = PTHREAD_ONCE_INIT;
static void register_release(void) { atexit(release_font_caches); }

#define FONT "DejaVu Sans"

typedef struct RGB { double r, g, b; } RGB;
static const RGB C_BLUE = {PLOT_BLUE_RGB}, C_ORANGE = {PLOT_ORANGE_RGB},
                 C_GRAY = {0.45, 0.45, 0.45}, C_GRID = {0.89, 0.89, 0.89},
                 C_TEXT = {0.10, 0.10, 0.10};

static void set_rgb(cairo_t *cr, RGB c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

/* A panel: pixel rectangle and data ranges (log10 axes map log10 of the value). */
typedef struct Axes {
    double px, py, pw, ph;
    double xmin, xmax, ymin, ymax;
    int xlog, ylog;
} Axes;

static double tx(const Axes *a, double v) {
    if (a->xlog) v = log10(v);
    return a->px + (v - a->xmin) / (a->xmax - a->xmin) * a->pw;
}
static double ty(const Axes *a, double v) {
    if (a->ylog) v = log10(v);
    return a->py + a->ph - (v - a->ymin) / (a->ymax - a->ymin) * a->ph;
}

/* anchor: 0 left, 0.5 centre, 1 right (x); baseline adjusted to centre on y */
static void text_at(cairo_t *cr, double x, double y, double size, int bold, double ax, double ay,
                    const char *s) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.x_advance, y - e.y_bearing - ay * e.height);
    cairo_show_text(cr, s);
}

static void text_vertical(cairo_t *cr, double x, double y, double size, const char *s) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, size, 0, 0.5, 0.5, s);
    cairo_restore(cr);
}

/* "Nice" tick step (1, 2, 2.5, 5 x 10^k) for about `want` intervals. */
static double nice_step(double range, int want) {
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return m * p;
}

static void fmt_tick(char *buf, size_t n, double v, double step, int is_log) {
    if (is_log) {   /* v is a power of ten exponent */
        double x = pow(10, v);
        if (x >= 1e9) snprintf(buf, n, "%gB", x / 1e9);
        else if (x >= 1e6) snprintf(buf, n, "%gM", x / 1e6);
        else if (x >= 1e3) snprintf(buf, n, "%gk", x / 1e3);
        else snprintf(buf, n, "%g", x);
        return;
    }
    if (step >= 1000) {   /* large linear ticks: 3M, 250k (full digits collide with the axis title) */
        double a = fabs(v);
        if (a >= 1e9) snprintf(buf, n, "%gB", v / 1e9);
        else if (a >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
        else if (a >= 1e3) snprintf(buf, n, "%gk", v / 1e3);
        else snprintf(buf, n, "%g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (step < 1 && fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-9) dec++;
    if (fabs(v) < step * 1e-9) v = 0;
    snprintf(buf, n, "%.*f", dec, v);
}

/* Grid, frame, ticks with labels, axis labels. */
static void draw_axes(cairo_t *cr, const Axes *a, const char *xlabel, const char *ylabel,
                      int xticks, int yticks, int draw_xlabels) {
    double xs = a->xlog ? 1 : nice_step(a->xmax - a->xmin, xticks);
    double ys = a->ylog ? 1 : nice_step(a->ymax - a->ymin, yticks);
    char buf[64];
    cairo_set_line_width(cr, 1);
    /* grid */
    set_rgb(cr, C_GRID);
    for (double v = ceil(a->xmin / xs - 1e-9) * xs; v <= a->xmax + 1e-9 * xs; v += xs) {
        double x = a->px + (v - a->xmin) / (a->xmax - a->xmin) * a->pw;
        cairo_move_to(cr, round(x) + 0.5, a->py);
        cairo_line_to(cr, round(x) + 0.5, a->py + a->ph);
    }
    for (double v = ceil(a->ymin / ys - 1e-9) * ys; v <= a->ymax + 1e-9 * ys; v += ys) {
        double y = a->py + a->ph - (v - a->ymin) / (a->ymax - a->ymin) * a->ph;
        cairo_move_to(cr, a->px, round(y) + 0.5);
        cairo_line_to(cr, a->px + a->pw, round(y) + 0.5);
    }
    cairo_stroke(cr);
    /* ticks and labels */
    set_rgb(cr, C_TEXT);
    for (double v = ceil(a->xmin / xs - 1e-9) * xs; v <= a->xmax + 1e-9 * xs; v += xs) {
        double x = round(a->px + (v - a->xmin) / (a->xmax - a->xmin) * a->pw) + 0.5;
        cairo_move_to(cr, x, a->py + a->ph);
        cairo_line_to(cr, x, a->py + a->ph + 6);
        cairo_stroke(cr);
        if (draw_xlabels) {
            fmt_tick(buf, sizeof buf, v, xs, a->xlog);
            text_at(cr, x, a->py + a->ph + 10, 14, 0, 0.5, 0, buf);
        }
    }
    for (double v = ceil(a->ymin / ys - 1e-9) * ys; v <= a->ymax + 1e-9 * ys; v += ys) {
        double y = round(a->py + a->ph - (v - a->ymin) / (a->ymax - a->ymin) * a->ph) + 0.5;
        cairo_move_to(cr, a->px - 6, y);
        cairo_line_to(cr, a->px, y);
        cairo_stroke(cr);
        fmt_tick(buf, sizeof buf, v, ys, a->ylog);
        text_at(cr, a->px - 10, y, 14, 0, 1, 0.5, buf);
    }
    /* frame */
    cairo_set_line_width(cr, 1.5);
    cairo_rectangle(cr, a->px, a->py, a->pw, a->ph);
    cairo_stroke(cr);
    if (xlabel && draw_xlabels) text_at(cr, a->px + a->pw / 2, a->py + a->ph + 36, 16, 0, 0.5, 0, xlabel);
    if (ylabel) text_vertical(cr, a->px - 62, a->py + a->ph / 2, 16, ylabel);
}

/* Legend box in a corner of the panel: corner 0 = lower right, 1 = upper left,
 * 2 = lower left. */
typedef struct LegendItem { RGB color; int style; const char *label; } LegendItem; /* style 0 line, 1 dashed, 2 marker, 3 box */
static void draw_legend(cairo_t *cr, const Axes *a, const LegendItem *it, int n, int corner) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 15);
    double w = 0;
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, it[i].label, &e);
        if (e.x_advance > w) w = e.x_advance;
    }
    double row = 24, bw = w + 64, bh = n * row + 12;
    double bx = corner == 1 || corner == 2 ? a->px + 14 : a->px + a->pw - bw - 14;
    double by = corner == 1 ? a->py + 14 : a->py + a->ph - bh - 14;
    cairo_rectangle(cr, bx, by, bw, bh);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double y = by + 6 + row * i + row / 2;
        set_rgb(cr, it[i].color);
        if (it[i].style == 2) {
            cairo_arc(cr, bx + 24, y, 4.5, 0, 2 * M_PI);
            cairo_fill(cr);
        } else if (it[i].style == 3) {
            cairo_rectangle(cr, bx + 14, y - 8, 20, 16);
            cairo_fill(cr);
        } else {
            cairo_set_line_width(cr, it[i].style == 1 ? 1.5 : 2.5);
            if (it[i].style == 1) { double d[2] = {6, 4}; cairo_set_dash(cr, d, 2, 0); }
            cairo_move_to(cr, bx + 10, y);
            cairo_line_to(cr, bx + 40, y);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        set_rgb(cr, C_TEXT);
        text_at(cr, bx + 50, y, 15, 0, 0, 0.5, it[i].label);
    }
}

static cairo_status_t write_fp(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int save_png(cairo_surface_t *sf, const char *path) {
    cairo_surface_flush(sf);
    MilesAtomicFile af;
    TOOL_TRY(miles_atomic_open(&af, path));
    cairo_status_t st = cairo_surface_write_to_png_stream(sf, write_fp, af.fp);
    if (st != CAIRO_STATUS_SUCCESS) {
        miles_atomic_abort(&af);
        return miles_set_error(MILES_EIO, "%s: writing PNG failed: %s", path, cairo_status_to_string(st));
    }
    return miles_atomic_commit(&af);
}

/* Canvas with a white background and the title. */
static int canvas(cairo_surface_t **sf, cairo_t **cr, int w, int h, const char *title,
                  const char *fallback) {
    pthread_once(&g_atexit_once, register_release);
    *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(*sf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*sf);
        return miles_set_error(MILES_ENOMEM, "plot: cannot create a %dx%d image", w, h);
    }
    *cr = cairo_create(*sf);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    set_rgb(*cr, C_TEXT);
    text_at(*cr, w / 2.0, 22, 20, 1, 0.5, 0, title && *title ? title : fallback);
    return MILES_OK;
}

static int finish(cairo_surface_t *sf, cairo_t *cr, const char *path) {
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    int s = st == CAIRO_STATUS_SUCCESS ? save_png(sf, path)
                                       : miles_set_error(MILES_EINTERNAL, "plot %s: cairo: %s", path,
                                                     cairo_status_to_string(st));
    cairo_surface_destroy(sf);
    return s;
}

static int check_xy(const char *fn, const char *path, const double *x, const double *y, int n) {
    if (!path) return miles_set_error(MILES_EINVAL, "%s: NULL path", fn);
    if (n < 1 || !x || !y) return miles_set_error(MILES_EINVAL, "%s: no points (n = %d)", fn, n);
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return miles_set_error(MILES_ENAN, "%s: point %d is not finite", fn, i);
    return MILES_OK;
}

/* Unit square panel used by ROC / PR / reliability. */
static Axes unit_axes(double px, double py, double pw, double ph) {
    Axes a = { px, py, pw, ph, 0, 1, 0, 1, 0, 0 };
    return a;
}

static void polyline(cairo_t *cr, const Axes *a, const double *x, const double *y, int n,
                     int steps_left) {
    cairo_save(cr);
    cairo_rectangle(cr, a->px, a->py, a->pw, a->ph);
    cairo_clip(cr);
    for (int i = 0; i < n; i++) {
        if (i == 0) cairo_move_to(cr, tx(a, x[i]), ty(a, y[i]));
        else if (steps_left) {
            /* PR step: precision at recall r_i holds back to r_{i+1} (sklearn AP) */
            cairo_line_to(cr, tx(a, x[i - 1]), ty(a, y[i - 1]));
            cairo_line_to(cr, tx(a, x[i]), ty(a, y[i - 1]));
            cairo_line_to(cr, tx(a, x[i]), ty(a, y[i]));
        } else cairo_line_to(cr, tx(a, x[i]), ty(a, y[i]));
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

int miles_plot_roc(const char *png_path, const double *fpr, const double *tpr, int n,
                   double auroc, const char *title) {
    TOOL_TRY(check_xy("plot_roc", png_path, fpr, tpr, n));
    cairo_surface_t *sf;
    cairo_t *cr;
    TOOL_TRY(canvas(&sf, &cr, 900, 760, title, "ROC curve"));
    Axes a = unit_axes(110, 60, 740, 600);
    draw_axes(cr, &a, "False positive rate", "True positive rate", 5, 5, 1);
    /* chance diagonal */
    set_rgb(cr, C_GRAY);
    cairo_set_line_width(cr, 1.5);
    double d[2] = {6, 4};
    cairo_set_dash(cr, d, 2, 0);
    cairo_move_to(cr, tx(&a, 0), ty(&a, 0));
    cairo_line_to(cr, tx(&a, 1), ty(&a, 1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    set_rgb(cr, C_BLUE);
    cairo_set_line_width(cr, 2.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    polyline(cr, &a, fpr, tpr, n, 0);
    char lab[64];
    snprintf(lab, sizeof lab, "model (AUROC = %.4f)", auroc);
    LegendItem it[2] = { {C_BLUE, 0, lab}, {C_GRAY, 1, "chance (AUROC = 0.5)"} };
    draw_legend(cr, &a, it, 2, 0);
    return finish(sf, cr, png_path);
}

int miles_plot_pr(const char *png_path, const double *recall, const double *precision, int n,
                  double average_precision, double prevalence, const char *title) {
    TOOL_TRY(check_xy("plot_pr", png_path, recall, precision, n));
    cairo_surface_t *sf;
    cairo_t *cr;
    TOOL_TRY(canvas(&sf, &cr, 900, 760, title, "Precision-recall curve"));
    Axes a = unit_axes(110, 60, 740, 600);
    a.ymax = 1.02;   /* leave room so the precision-1 segments are visible */
    draw_axes(cr, &a, "Recall", "Precision", 5, 5, 1);
    char lab2[64] = "";
    if (isfinite(prevalence)) {
        set_rgb(cr, C_GRAY);
        cairo_set_line_width(cr, 1.5);
        double d[2] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
        cairo_move_to(cr, tx(&a, 0), ty(&a, prevalence));
        cairo_line_to(cr, tx(&a, 1), ty(&a, prevalence));
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        snprintf(lab2, sizeof lab2, "no skill (prevalence = %.4f)", prevalence);
    }
    /* Within a run of points with equal recall only the last (highest
     * threshold) counts in AP; drawing just those gives the exact step
     * function AP integrates, without the saw-teeth of the tied points. */
    double *rx = malloc((size_t)n * sizeof *rx), *py = malloc((size_t)n * sizeof *py);
    if (!rx || !py) {
        free(rx); free(py);
        cairo_destroy(cr); cairo_surface_destroy(sf);
        return miles_set_error(MILES_ENOMEM, "plot_pr: out of memory");
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (i + 1 == n || recall[i + 1] != recall[i]) { rx[m] = recall[i]; py[m] = precision[i]; m++; }
    set_rgb(cr, C_ORANGE);
    cairo_set_line_width(cr, 2.5);
    polyline(cr, &a, rx, py, m, 1);
    free(rx); free(py);
    char lab[64];
    snprintf(lab, sizeof lab, "model (AP = %.4f)", average_precision);
    LegendItem it[2] = { {C_ORANGE, 0, lab}, {C_GRAY, 1, lab2} };
    draw_legend(cr, &a, it, lab2[0] ? 2 : 1, 0);
    return finish(sf, cr, png_path);
}

int miles_plot_calibration(const char *png_path, const double *bin_mean_score,
                           const double *bin_frac_pos, const int64_t *bin_count, int n_bins,
                           double ece, const char *title) {
    if (!png_path || n_bins < 1 || !bin_mean_score || !bin_frac_pos || !bin_count)
        return miles_set_error(MILES_EINVAL, "plot_calibration: bad arguments (n_bins = %d)", n_bins);
    int64_t maxc = 0, total = 0;
    for (int b = 0; b < n_bins; b++) {
        if (bin_count[b] < 0) return miles_set_error(MILES_EINVAL, "plot_calibration: count[%d] < 0", b);
        if (bin_count[b] && (!isfinite(bin_mean_score[b]) || !isfinite(bin_frac_pos[b])))
            return miles_set_error(MILES_ENAN, "plot_calibration: bin %d is not finite", b);
        if (bin_count[b] > maxc) maxc = bin_count[b];
        total += bin_count[b];
    }
    if (total == 0) return miles_set_error(MILES_EINVAL, "plot_calibration: all bins are empty");
    cairo_surface_t *sf;
    cairo_t *cr;
    TOOL_TRY(canvas(&sf, &cr, 900, 940, title, "Reliability diagram"));
    Axes a = unit_axes(110, 60, 740, 560);
    draw_axes(cr, &a, NULL, "Fraction of positives", 5, 5, 0);
    /* bin outlines: the gap between bar top and the diagonal is the per-bin error */
    double bw = 1.0 / n_bins;
    for (int b = 0; b < n_bins; b++) {
        if (!bin_count[b]) continue;
        double x0 = tx(&a, b * bw), x1 = tx(&a, (b + 1) * bw), y = ty(&a, bin_frac_pos[b]);
        cairo_rectangle(cr, x0 + 1, y, x1 - x0 - 2, ty(&a, 0) - y);
        cairo_set_source_rgba(cr, C_BLUE.r, C_BLUE.g, C_BLUE.b, 0.18);
        cairo_fill(cr);
    }
    set_rgb(cr, C_GRAY);
    cairo_set_line_width(cr, 1.5);
    double d[2] = {6, 4};
    cairo_set_dash(cr, d, 2, 0);
    cairo_move_to(cr, tx(&a, 0), ty(&a, 0));
    cairo_line_to(cr, tx(&a, 1), ty(&a, 1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    set_rgb(cr, C_BLUE);
    cairo_set_line_width(cr, 2.5);
    int first = 1;
    for (int b = 0; b < n_bins; b++) {
        if (!bin_count[b]) continue;
        double x = tx(&a, bin_mean_score[b]), y = ty(&a, bin_frac_pos[b]);
        if (first) cairo_move_to(cr, x, y); else cairo_line_to(cr, x, y);
        first = 0;
    }
    cairo_stroke(cr);
    for (int b = 0; b < n_bins; b++) {
        if (!bin_count[b]) continue;
        cairo_arc(cr, tx(&a, bin_mean_score[b]), ty(&a, bin_frac_pos[b]), 5, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    char lab[64], lab3[64];
    snprintf(lab, sizeof lab, "model (ECE = %.4f)", ece);
    snprintf(lab3, sizeof lab3, "fraction of positives per bin");
    LegendItem it[3] = { {C_BLUE, 0, lab}, {C_GRAY, 1, "perfectly calibrated"},
                         {{0.84, 0.88, 0.94}, 3, lab3} };
    draw_legend(cr, &a, it, 3, 1);
    /* histogram of scores (bin counts) */
    Axes h = { 110, 650, 740, 190, 0, 1, 0, (double)maxc * 1.1, 0, 0 };
    draw_axes(cr, &h, "Predicted probability (positive class)", "Count", 5, 3, 1);
    for (int b = 0; b < n_bins; b++) {
        if (!bin_count[b]) continue;
        double x0 = tx(&h, b * bw), x1 = tx(&h, (b + 1) * bw), y = ty(&h, (double)bin_count[b]);
        cairo_rectangle(cr, x0 + 1, y, x1 - x0 - 2, ty(&h, 0) - y);
        set_rgb(cr, C_BLUE);
        cairo_fill(cr);
    }
    char nb[64];
    snprintf(nb, sizeof nb, "%d bins, n = %lld", n_bins, (long long)total);
    set_rgb(cr, C_TEXT);
    text_at(cr, h.px + h.pw - 10, h.py + 10, 14, 0, 1, 0, nb);
    return finish(sf, cr, png_path);
}

int miles_plot_velocity(const char *png_path, const double *pred, const double *target, int n,
                        int original_units, const char *title) {
    TOOL_TRY(check_xy("plot_velocity", png_path, target, pred, n));
    double lo = INFINITY, hi = -INFINITY;
    int all_pos = 1;
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, fmin(pred[i], target[i]));
        hi = fmax(hi, fmax(pred[i], target[i]));
        if (pred[i] <= 0 || target[i] <= 0) all_pos = 0;
    }
    int lg = original_units && all_pos && hi / lo > 100;
    if (lg) { lo = floor(log10(lo)); hi = ceil(log10(hi)); }
    else {
        double pad = (hi - lo) * 0.04;
        if (pad == 0) pad = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
        double st = nice_step(hi - lo + 2 * pad, 7);
        lo = floor((lo - pad) / st) * st;
        hi = ceil((hi + pad) / st) * st;
    }
    cairo_surface_t *sf;
    cairo_t *cr;
    TOOL_TRY(canvas(&sf, &cr, 900, 800, title, "Velocity: predicted vs true"));
    Axes a = { 170, 60, 640, 640, lo, hi, lo, hi, lg, lg };
    const char *unit = original_units ? "views/day" : "scaled";
    char xl[64], yl[64];
    snprintf(xl, sizeof xl, "True velocity (%s%s)", unit, lg ? ", log scale" : "");
    snprintf(yl, sizeof yl, "Predicted velocity (%s%s)", unit, lg ? ", log scale" : "");
    draw_axes(cr, &a, xl, yl, 7, 7, 1);
    cairo_save(cr);
    cairo_rectangle(cr, a.px, a.py, a.pw, a.ph);
    cairo_clip(cr);
    double r = n > 5000 ? 1.6 : n > 500 ? 2.4 : 3.5;
    cairo_set_source_rgba(cr, C_BLUE.r, C_BLUE.g, C_BLUE.b, n > 2000 ? 0.25 : 0.55);
    for (int i = 0; i < n; i++) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, tx(&a, target[i]), ty(&a, pred[i]), r, 0, 2 * M_PI);
    }
    cairo_fill(cr);
    set_rgb(cr, C_ORANGE);
    cairo_set_line_width(cr, 2);
    double d[2] = {8, 5};
    cairo_set_dash(cr, d, 2, 0);
    double e0 = lg ? pow(10, lo) : lo, e1 = lg ? pow(10, hi) : hi;
    cairo_move_to(cr, tx(&a, e0), ty(&a, e0));
    cairo_line_to(cr, tx(&a, e1), ty(&a, e1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_restore(cr);
    char lab[64];
    snprintf(lab, sizeof lab, "examples (n = %d)", n);
    LegendItem it[2] = { {C_BLUE, 2, lab}, {C_ORANGE, 1, "y = x (perfect prediction)"} };
    draw_legend(cr, &a, it, 2, 1);
    return finish(sf, cr, png_path);
}

#else /* no cairo */

static int no_cairo(const char *fn) {
    return miles_set_error(MILES_EUNSUPPORTED, "%s: built without cairo (install libcairo2-dev and rebuild)", fn);
}
int miles_plot_roc(const char *png_path, const double *fpr, const double *tpr, int n,
                   double auroc, const char *title) {
    (void)png_path; (void)fpr; (void)tpr; (void)n; (void)auroc; (void)title;
    return no_cairo("plot_roc");
}
int miles_plot_pr(const char *png_path, const double *recall, const double *precision, int n,
                  double average_precision, double prevalence, const char *title) {
    (void)png_path; (void)recall; (void)precision; (void)n; (void)average_precision;
    (void)prevalence; (void)title;
    return no_cairo("plot_pr");
}
int miles_plot_calibration(const char *png_path, const double *bin_mean_score,
                           const double *bin_frac_pos, const int64_t *bin_count, int n_bins,
                           double ece, const char *title) {
    (void)png_path; (void)bin_mean_score; (void)bin_frac_pos; (void)bin_count; (void)n_bins;
    (void)ece; (void)title;
    return no_cairo("plot_calibration");
}
int miles_plot_velocity(const char *png_path, const double *pred, const double *target, int n,
                        int original_units, const char *title) {
    (void)png_path; (void)pred; (void)target; (void)n; (void)original_units; (void)title;
    return no_cairo("plot_velocity");
}
#endif
