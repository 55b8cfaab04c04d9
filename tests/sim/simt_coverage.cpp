/*
 * simt_coverage.cpp — the per-kernel table of the SIMT emulator runs.
 *
 *   simt_coverage RECORDS kernels/a.cu kernels/b.cu ...
 *
 * Lists every __global__ function defined in the given sources (comments
 * stripped; template kernels count once), reads the records the emulated
 * test programs appended (simt_check_record, SIMT_RECORD=RECORDS: one line
 * per kernel and check), and prints one line per kernel: launches, the op
 * checks (test_cuda_ops: the kernel's op against its CPU twin) with their
 * largest error (the "scaled" error |gpu - cpu| / max(1, max|cpu|)) and the
 * check it came from, and the model-level checks (test_cuda_model: the whole
 * GPU model against the CPU model) the kernel took part in.  Exit status 1
 * when a kernel of the sources has no passing op check, or any check that
 * read its output failed: a new kernel needs an emulated op test.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

static std::string strip_comments(const std::string &s) {
    std::string o;
    for (size_t i = 0; i < s.size(); i++) {
        if (s.compare(i, 2, "/*") == 0) {
            size_t e = s.find("*/", i + 2);
            i = e == std::string::npos ? s.size() : e + 1;
            o += ' ';
        } else if (s.compare(i, 2, "//") == 0) {
            while (i < s.size() && s[i] != '\n') i++;
            o += '\n';
        } else {
            o += s[i];
        }
    }
    return o;
}

static std::string base_name(const std::string &k) { return k.substr(0, k.find('<')); }

/* the op test programs (kernels against their CPU twins); others are model-level */
static bool op_program(const std::string &p) { return p == "test_cuda_ops" || p == "test_cuda_fast"; }

struct Row {
    std::string file;
    std::map<std::string, long> launches; /* program/instantiation -> launches */
    long checks = 0, failed = 0, unchecked = 0, model_checks = 0;
    double max_err = 0;
    std::string worst;
    bool bar = false, warp = false, atomic = false;
};

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s RECORDS kernels/x.cu ...\n", argv[0]);
        return 2;
    }
    std::map<std::string, Row> rows;
    /* __global__ [qualifiers] void name( -- __launch_bounds__(...) removed first */
    std::regex bounds("__launch_bounds__\\s*\\([^)]*\\)");
    std::regex def("__global__\\s+(?:[A-Za-z_][A-Za-z0-9_]*\\s+)*?void\\s+([A-Za-z_][A-Za-z0-9_]*)\\s*\\(");
    std::regex token("\\b__global__\\b");
    int nglobal = 0;
    for (int i = 2; i < argc; i++) {
        std::ifstream f(argv[i]);
        if (!f) {
            fprintf(stderr, "simt_coverage: cannot read %s\n", argv[i]);
            return 2;
        }
        std::stringstream ss;
        ss << f.rdbuf();
        std::string src = std::regex_replace(strip_comments(ss.str()), bounds, " ");
        const char *slash = strrchr(argv[i], '/');
        /* every __global__ must be a definition this parser understood */
        long ntok = std::distance(std::sregex_iterator(src.begin(), src.end(), token), std::sregex_iterator());
        long ndef = std::distance(std::sregex_iterator(src.begin(), src.end(), def), std::sregex_iterator());
        if (ntok != ndef) {
            fprintf(stderr, "simt_coverage: %s has %ld __global__ but %ld kernel definitions were recognised\n",
                    argv[i], ntok, ndef);
            return 2;
        }
        for (std::sregex_iterator it(src.begin(), src.end(), def), end; it != end; ++it) {
            std::string name = (*it)[1];
            if (rows.count(name)) {
                fprintf(stderr, "simt_coverage: kernel %s defined twice\n", name.c_str());
                return 2;
            }
            rows[name].file = slash ? slash + 1 : argv[i];
            nglobal++;
        }
    }
    std::ifstream rec(argv[1]);
    std::string line;
    long nrec = 0;
    while (std::getline(rec, line)) {
        std::vector<std::string> c;
        std::stringstream ls(line);
        std::string field;
        while (std::getline(ls, field, '\t')) c.push_back(field);
        if (c.size() < 10) continue;
        auto it = rows.find(base_name(c[0]));
        if (it == rows.end()) continue; /* a test program's own kernel */
        Row &r = it->second;
        nrec++;
        long &l = r.launches[c[1] + "/" + c[0]];
        l = std::max(l, atol(c[6].c_str()));
        r.bar |= atol(c[7].c_str()) > 0;
        r.warp |= atol(c[8].c_str()) > 0;
        r.atomic |= atol(c[9].c_str()) > 0;
        if (c[2] == "(no check after it)") {
            r.unchecked++;
            continue;
        }
        double err = strtod(c[3].c_str(), nullptr);
        if (!(err == err)) err = INFINITY;
        if (c[5] != "1") r.failed++;
        if (!op_program(c[1])) {
            r.model_checks++;
            continue;
        }
        r.checks++;
        if (r.worst.empty() || err > r.max_err) {
            r.max_err = err;
            r.worst = c[1] + ": " + c[2];
        }
    }
    printf("SIMT emulator: every __global__ kernel of kernels/ against its CPU op\n");
    printf("(op err = largest |emulated - CPU| / max(1, max |CPU|) of the test_cuda_ops checks that read its\n"
           " output; model = test_cuda_model checks (whole model vs CPU model, golden fixtures) it ran in)\n");
    printf("%-34s %-15s %8s %5s %10s %5s %-12s %s\n", "kernel", "source", "launches", "ops", "op err", "model",
           "uses", "worst op check");
    int ok = 0, bad = 0;
    for (auto &kv : rows) {
        Row &r = kv.second;
        long launches = 0;
        for (auto &l : r.launches) launches += l.second;
        std::string uses = std::string(r.bar ? "bar " : "") + (r.warp ? "warp " : "") + (r.atomic ? "atomic" : "");
        const char *status = launches == 0 ? "NEVER RUN" : r.checks == 0 ? "NO OP CHECK" : r.failed ? "FAILED" : "";
        char err[32];
        if (r.checks) snprintf(err, sizeof err, "%.3e", r.max_err);
        else snprintf(err, sizeof err, "-");
        std::string worst = r.worst.rfind("test_cuda_ops: ", 0) == 0 ? r.worst.substr(15) : r.worst;
        printf("%-34s %-15s %8ld %5ld %10s %5ld %-12s %s%s%s\n", kv.first.c_str(), r.file.c_str(), launches,
               r.checks, err, r.model_checks, uses.empty() ? "-" : uses.c_str(), *status ? status : "",
               *status ? " " : "", worst.c_str());
        if (*status) bad++;
        else ok++;
    }
    printf("%d __global__ kernels in kernels/, %d run in the emulator and checked against their CPU op%s\n", nglobal,
           ok, bad ? "" : ": OK");
    if (bad) printf("FAIL %d kernel(s) without a passing emulated op check (add one to tests/cuda/test_cuda_ops.cu)\n", bad);
    if (nrec == 0) printf("FAIL no records in %s\n", argv[1]);
    return bad || nrec == 0 ? 1 : 0;
}
