/*
 * embedding.cu — BERT embeddings: out = wte[id] + wpe[t] + wtt[tt].
 *
 * Backward: the position table is reduced deterministically (thread per
 * (t, c) summing over b in order, the CPU's order); the word and token-type
 * tables are scatter-adds with atomicAdd, because repeated ids ([CLS], [PAD],
 * common words, type 0 everywhere) have no fixed owner without a sort.  Their
 * fp32 summation order therefore differs from the CPU's (rounding level).
 */
#include "fast.cuh" /* miles_cuda_sm_count */

__global__ void embedding_forward_kernel(float *out, const int32_t *ids, const int32_t *tt,
                                         const float *wte, const float *wpe, const float *wtt,
                                         int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * T * C) {
        size_t bt = i / C, c = i % C;
        size_t t = bt % T;
        size_t y = tt ? (size_t)tt[bt] : 0;
        out[i] = wte[(size_t)ids[bt] * C + c] + wpe[t * C + c] + wtt[y * C + c];
    }
}

/* dwpe[t,c] += sum_b dout[b,t,c] */
__global__ void embedding_backward_pos_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)T * C) {
        float acc = 0.0f;
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * T * C + i];
        dwpe[i] += acc;
    }
}

__global__ void embedding_backward_scatter_kernel(float *dwte, float *dwtt, const float *dout,
                                                  const int32_t *ids, const int32_t *tt, int B,
                                                  int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * T * C) {
        size_t bt = i / C, c = i % C;
        float d = dout[i];
        if (dwte) atomicAdd(dwte + (size_t)ids[bt] * C + c, d);
        if (dwtt) atomicAdd(dwtt + (size_t)(tt ? tt[bt] : 0) * C + c, d);
    }
}

extern "C" int embedding_forward_cuda(float *out, const int32_t *ids, const int32_t *tt,
                                      const float *wte, const float *wpe, const float *wtt,
                                      int B, int T, int C, miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(B >= 0 && T >= 0 && C >= 0, "embedding_forward_cuda: bad shape B=%d T=%d C=%d", B, T, C);
    size_t n = (size_t)B * T * C;
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(embedding_forward_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), out, ids,
                 tt, wte, wpe, wtt, B, T, C);
    return MILES_OK;
}

extern "C" int embedding_backward_cuda(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                       const int32_t *ids, const int32_t *tt, int B, int T, int C,
                                       miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(B >= 0 && T >= 0 && C >= 0, "embedding_backward_cuda: bad shape B=%d T=%d C=%d", B, T, C);
    size_t n = (size_t)B * T * C;
    if (n == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    if (dwpe) {
        MILES_LAUNCH(embedding_backward_pos_kernel, miles_grid((size_t)T * C), MILES_CUDA_THREADS, 0, s, dwpe,
                     dout, B, T, C);
    }
    if (dwte || dwtt) {
        MILES_LAUNCH(embedding_backward_scatter_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, s, dwte, dwtt, dout,
                     ids, tt, B, T, C);
    }
    return MILES_OK;
}

/* ------------------------------------------- segmented backward (fast path) */

/* Word ids and token types of one batch, as one virtual table (rows < V:
 * wte, V + y: wtt row y), cut into segments of at most
 * MILES_CUDA_EMB_SEGMENT tokens (the host builds them from the per-id token
 * lists, tokens in order).  A row with one segment is summed straight into
 * the table in token order; a row with several ([PAD], [CLS], type 0 ...)
 * gets one partial row per segment (slot seg_multi[s] - 1 of ws), then the
 * partials are added in segment order: deterministic, and no row serializes
 * more than one segment per block.  Counts come from the device (counts[0]
 * segments, counts[1] multi-segment rows) so a CUDA graph replays any batch. */
__global__ void emb_seg_backward_kernel(float *dwte, float *dwtt, int V, float *ws, const float *dout,
                                        const int32_t *counts, const int32_t *seg_row, const int32_t *seg_beg,
                                        const int32_t *seg_multi, const int32_t *pos, int C) {
    const int S = counts[0];
    for (int s = blockIdx.x; s < S; s += gridDim.x) {
        const int row = seg_row[s], b0 = seg_beg[s], b1 = seg_beg[s + 1], slot = seg_multi[s];
        float *dst = slot ? ws + (size_t)(slot - 1) * C
                          : (row < V ? dwte + (size_t)row * C : dwtt + (size_t)(row - V) * C);
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float g = slot ? 0.0f : dst[c];
            for (int j = b0; j < b1; j++) g += dout[(size_t)pos[j] * C + c];
            dst[c] = g;
        }
    }
}

__global__ void emb_multi_reduce_kernel(float *dwte, float *dwtt, int V, const float *ws, const int32_t *counts,
                                        const int32_t *seg_multi, const int32_t *multi_row,
                                        const int32_t *multi_beg, const int32_t *multi_end, int C) {
    const int M = counts[1];
    for (int m = blockIdx.x; m < M; m += gridDim.x) {
        const int row = multi_row[m], s0 = multi_beg[m], s1 = multi_end[m];
        float *dst = row < V ? dwte + (size_t)row * C : dwtt + (size_t)(row - V) * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float g = dst[c];
            for (int s = s0; s < s1; s++) g += ws[(size_t)(seg_multi[s] - 1) * C + c];
            dst[c] = g;
        }
    }
}

extern "C" int embedding_backward_seg_cuda(float *dwte, float *dwpe, float *dwtt, int V, const float *dout,
                                           const int32_t *counts, const int32_t *seg_row, const int32_t *seg_beg,
                                           const int32_t *seg_multi, const int32_t *multi_row,
                                           const int32_t *multi_beg, const int32_t *multi_end, const int32_t *pos,
                                           int max_segments, int max_multi, int B, int T, int C, float *ws,
                                           miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(B >= 0 && T > 0 && C > 0 && V > 0, "embedding_backward_seg_cuda: bad shape B=%d T=%d C=%d", B,
                       T, C);
    if (B == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    const int threads = C >= 256 ? 256 : 128;
    const int cap = 8 * miles_cuda_sm_count();
    unsigned g1 = (unsigned)(max_segments < cap ? (max_segments > 0 ? max_segments : 1) : cap);
    unsigned g2 = (unsigned)(max_multi < cap ? (max_multi > 0 ? max_multi : 1) : cap);
    MILES_LAUNCH(emb_seg_backward_kernel, g1, threads, 0, s, dwte, dwtt, V, ws, dout, counts, seg_row, seg_beg,
                 seg_multi, pos, C);
    MILES_LAUNCH(emb_multi_reduce_kernel, g2, threads, 0, s, dwte, dwtt, V, (const float *)ws, counts, seg_multi,
                 multi_row, multi_beg, multi_end, C);
    if (dwpe)
        MILES_LAUNCH(embedding_backward_pos_kernel, miles_grid((size_t)T * C), MILES_CUDA_THREADS, 0, s, dwpe, dout, B,
                     T, C);
    return MILES_OK;
}

/* Host: the segment lists of embedding_backward_seg_cuda from the batch's ids
 * and token types (cuda_ops.h).  Word ids in first-seen order, each id's
 * tokens ascending; then the token types; segments of at most
 * MILES_CUDA_EMB_SEGMENT tokens.  slot[V] must hold -1 (and does again on
 * return); uniq [N] and cnt [N + TV] are scratch. */
extern "C" void miles_emb_segments_build(MilesEmbSegments *sg, const int32_t *ids, const int32_t *tt, int N, int V,
                                         int TV, int32_t *slot, int32_t *uniq, int32_t *cnt) {
    const int CH = MILES_CUDA_EMB_SEGMENT;
    int U = 0, S = 0, M = 0, slots = 0;
    for (int n = 0; n < N; n++) {
        int32_t id = ids[n];
        if (slot[id] < 0) {
            slot[id] = U;
            uniq[U] = id;
            cnt[U] = 0;
            U++;
        }
        cnt[slot[id]]++;
    }
    for (int u = 0, off = 0; u < U; u++) { /* counts -> fill cursors */
        int c = cnt[u];
        cnt[u] = off;
        off += c;
    }
    for (int n = 0; n < N; n++) sg->pos[cnt[slot[ids[n]]]++] = n; /* cnt[u] ends as the end of u */
    int begin = 0;
    for (int u = 0; u < U; u++) {
        const int end = cnt[u], nseg = (end - begin + CH - 1) / CH;
        if (nseg > 1) {
            sg->multi_row[M] = uniq[u];
            sg->multi_beg[M] = S;
            sg->multi_end[M] = S + nseg;
            M++;
        }
        for (int j = 0; j < nseg; j++, S++) {
            sg->seg_row[S] = uniq[u];
            sg->seg_beg[S] = begin + j * CH;
            sg->seg_multi[S] = nseg > 1 ? ++slots : 0;
        }
        begin = end;
        slot[uniq[u]] = -1;
    }
    /* token types: counting sort, the lists at pos[N ..) */
    for (int y = 0; y <= TV; y++) cnt[y] = 0;
    for (int n = 0; n < N; n++) cnt[(tt ? tt[n] : 0) + 1]++;
    for (int y = 0; y < TV; y++) cnt[y + 1] += cnt[y];
    for (int n = 0; n < N; n++) sg->pos[N + cnt[tt ? tt[n] : 0]++] = n; /* cnt[y] ends as the end of y */
    begin = 0;
    for (int y = 0; y < TV; y++) {
        const int end = cnt[y], nseg = (end - begin + CH - 1) / CH;
        if (nseg > 1) {
            sg->multi_row[M] = V + y;
            sg->multi_beg[M] = S;
            sg->multi_end[M] = S + nseg;
            M++;
        }
        for (int j = 0; j < nseg; j++, S++) {
            sg->seg_row[S] = V + y;
            sg->seg_beg[S] = N + begin + j * CH;
            sg->seg_multi[S] = nseg > 1 ? ++slots : 0;
        }
        begin = end;
    }
    sg->seg_beg[S] = 2 * N;
    sg->counts[0] = S;
    sg->counts[1] = M;
    sg->slots = slots;
}
