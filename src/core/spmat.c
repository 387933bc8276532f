/* spmat.c: building a compressed weight matrix (dc/spmat.h) on a backend from
 * the kept weights a model file lists, checking that list first, since it
 * may come from a damaged or crafted file: a wrong position would otherwise
 * become an out-of-bounds read in a kernel. */
#include "dc/spmat.h"

#include <stdlib.h>
#include <string.h>

#include "dc/backend.h"

static const char *const dc_spmat_names[DC_FORMAT_COUNT] = {"dense", "csr", "codebook"};

const char *dc_spmat_format_name(enum dc_spmat_format f)
{
    return (f >= 0 && f < DC_FORMAT_COUNT) ? dc_spmat_names[f] : "unknown";
}

int dc_spmat_format_parse(const char *s)
{
    for (int i = 0; i < DC_FORMAT_COUNT; i++)
        if (s && strcmp(s, dc_spmat_names[i]) == 0)
            return i;
    return -1;
}

size_t dc_spmat_bytes(const struct dc_spmat *a)
{
    size_t rows = (size_t)a->rows + 1, e = (size_t)a->entries;
    switch (a->format) {
    case DC_FORMAT_DENSE: return 4 * e;
    case DC_FORMAT_CSR: return 4 * rows + 8 * e;
    case DC_FORMAT_CODEBOOK:
        if (a->slices > 0) /* slice pointers and the lanes' rows (and the pair table) */
            return 4 * ((size_t)a->slices + 1) + 4 * 8 * (size_t)a->slices + 2 * e + 4 * 256 +
                   (a->pairs ? 8 * DC_SPMAT_PAIRS : 0);
        return 4 * rows + 2 * e + 4 * 256;
    default: return 0;
    }
}

static enum dc_status dc_spmat_check_src(const struct dc_spmat_src *s, enum dc_spmat_format f)
{
    if (s->rows < 1 || s->cols < 1)
        return DC_ERROR(DC_ERR_ARG, "sparse matrix of %d x %d: both sizes must be at least 1", s->rows, s->cols);
    uint64_t count = (uint64_t)s->rows * (uint64_t)s->cols;
    if (s->nnz < 0 || (uint64_t)s->nnz > count || count > 0x7FFFFFFFu)
        return DC_ERROR(DC_ERR_ARG, "sparse matrix of %d x %d with %lld kept weights (at most 2^31 - 1 values)",
                        s->rows, s->cols, (long long)s->nnz);
    if (s->nnz > 0 && (!s->pos || (!s->values && !s->codes)))
        return DC_ERROR(DC_ERR_ARG, "sparse matrix: %lld kept weights but no positions or values",
                        (long long)s->nnz);
    if (s->codes && (!s->codebook || s->m < 1 || s->m > 256))
        return DC_ERROR(DC_ERR_ARG, "sparse matrix: codes need a codebook of 1..256 entries (have %d)", s->m);
    if (f == DC_FORMAT_CODEBOOK && !s->codes)
        return DC_ERROR(DC_ERR_ARG, "the codebook format needs a quantized weight (codes and a codebook)");
    for (int64_t i = 0; i < s->nnz; i++) {
        if (s->pos[i] >= count || (i > 0 && s->pos[i] <= s->pos[i - 1]))
            return DC_ERROR(DC_ERR_ARG, "sparse matrix: position %u of weight %lld is out of order or beyond %llu",
                            s->pos[i], (long long)i, (unsigned long long)count);
        if (s->codes && s->codes[i] >= s->m)
            return DC_ERROR(DC_ERR_ARG, "sparse matrix: code %u of weight %lld is beyond the %d-entry codebook",
                            s->codes[i], (long long)i, s->m);
    }
    return DC_OK;
}

static float dc_spmat_value(const struct dc_spmat_src *s, int64_t i)
{
    return s->codes ? s->codebook[s->codes[i]] : s->values[i];
}

/* Host arrays of one format, uploaded together; a failed upload frees all. */
struct dc_spmat_host {
    int32_t *rowptr, *colidx;
    float *values, *codebook;
    uint8_t *gaps, *codes;
};

static void dc_spmat_host_free(struct dc_spmat_host *h)
{
    free(h->rowptr), free(h->colidx), free(h->values), free(h->codebook), free(h->gaps), free(h->codes);
}

/* Entries (kept weights and fillers) per row of the codebook form, and row pointers. */
static int64_t dc_spmat_cb_rowptr(const struct dc_spmat_src *s, int32_t *rowptr)
{
    int64_t e = 0, i = 0;
    for (int r = 0; r < s->rows; r++) {
        rowptr[r] = (int32_t)e;
        int64_t prev = -1, end = (int64_t)(r + 1) * s->cols;
        for (; i < s->nnz && s->pos[i] < end; i++) {
            int64_t c = s->pos[i] - (int64_t)r * s->cols;
            e += 1 + (c - prev - 1) / DC_SPMAT_FILLER;
            prev = c;
        }
    }
    rowptr[s->rows] = (int32_t)e;
    return e;
}

static enum dc_status dc_spmat_fill_host(const struct dc_spmat_src *s, struct dc_spmat *a, struct dc_spmat_host *h)
{
    const size_t rows1 = (size_t)s->rows + 1, count = (size_t)s->rows * s->cols;
    if (a->format == DC_FORMAT_DENSE) {
        a->nnz = a->entries = (int64_t)count;
        if (!(h->values = calloc(count, sizeof(float))))
            return DC_ERROR(DC_ERR_NOMEM, "no memory for a dense %d x %d matrix", s->rows, s->cols);
        for (int64_t i = 0; i < s->nnz; i++)
            h->values[s->pos[i]] = dc_spmat_value(s, i);
        return DC_OK;
    }
    if (!(h->rowptr = malloc(rows1 * sizeof(int32_t))))
        return DC_ERROR(DC_ERR_NOMEM, "no memory for %zu row pointers", rows1);
    if (a->format == DC_FORMAT_CSR) {
        size_t n = s->nnz ? (size_t)s->nnz : 1;
        h->colidx = malloc(n * sizeof(int32_t));
        h->values = malloc(n * sizeof(float));
        if (!h->colidx || !h->values)
            return DC_ERROR(DC_ERR_NOMEM, "no memory for %lld sparse weights", (long long)s->nnz);
        int64_t i = 0;
        for (int r = 0; r < s->rows; r++) {
            h->rowptr[r] = (int32_t)i;
            for (; i < s->nnz && s->pos[i] < (uint64_t)(r + 1) * s->cols; i++) {
                h->colidx[i] = (int32_t)(s->pos[i] - (uint64_t)r * s->cols);
                h->values[i] = dc_spmat_value(s, i);
            }
        }
        h->rowptr[s->rows] = (int32_t)i;
        a->entries = s->nnz;
        return DC_OK;
    }
    a->entries = dc_spmat_cb_rowptr(s, h->rowptr);
    size_t e = a->entries ? (size_t)a->entries : 1;
    h->gaps = malloc(e);
    h->codes = calloc(e, 1);
    h->codebook = calloc(256, sizeof(float));
    if (!h->gaps || !h->codes || !h->codebook)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for %lld codebook entries", (long long)a->entries);
    memcpy(h->codebook, s->codebook, (size_t)s->m * sizeof(float));
    int64_t i = 0, j = 0;
    for (int r = 0; r < s->rows; r++) {
        int64_t prev = -1;
        for (; i < s->nnz && s->pos[i] < (uint64_t)(r + 1) * s->cols; i++) {
            int64_t c = s->pos[i] - (int64_t)r * s->cols, z = c - prev - 1;
            for (; z >= DC_SPMAT_FILLER; z -= DC_SPMAT_FILLER)
                h->gaps[j++] = DC_SPMAT_FILLER; /* its code stays 0 */
            h->gaps[j] = (uint8_t)z;
            h->codes[j++] = s->codes[i];
            prev = c;
        }
    }
    return DC_OK;
}

/* Allocate *dst in backend memory and upload `bytes` from host (nothing for NULL host). */
static enum dc_status dc_spmat_put(struct dc_backend *be, void **dst, const void *host, size_t bytes)
{
    if (!host)
        return DC_OK;
    DC_TRY(be->ops.alloc(be, dst, bytes ? bytes : 4));
    return bytes ? be->ops.upload(be, *dst, host, bytes) : DC_OK;
}

enum dc_status dc_spmat_create(struct dc_backend *be, enum dc_spmat_format f, const struct dc_spmat_src *src,
                               int max_n, struct dc_spmat **out)
{
    *out = NULL;
    if (f < 0 || f >= DC_FORMAT_COUNT || max_n < 1)
        return DC_ERROR(DC_ERR_ARG, "sparse matrix: format %d, max_n %d", (int)f, max_n);
    DC_TRY(dc_spmat_check_src(src, f));
    struct dc_spmat *a = calloc(1, sizeof *a);
    if (!a)
        return DC_ERROR(DC_ERR_NOMEM, "no memory for a sparse matrix");
    *a = (struct dc_spmat){.format = f, .rows = src->rows, .cols = src->cols, .nnz = src->nnz,
                           .m = src->codes ? src->m : 0, .max_n = max_n};
    struct dc_spmat_host h = {0};
    enum dc_status st = dc_spmat_fill_host(src, a, &h);
    size_t e = (size_t)a->entries;
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->rowptr, h.rowptr, ((size_t)a->rows + 1) * 4);
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->colidx, h.colidx, e * 4);
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->values, h.values, e * 4);
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->gaps, h.gaps, e);
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->codes, h.codes, e);
    if (st == DC_OK)
        st = dc_spmat_put(be, (void **)&a->codebook, h.codebook, 256 * 4);
    dc_spmat_host_free(&h);
    if (st == DC_OK)
        st = be->ops.spmat_prepare(be, a);
    if (st != DC_OK) {
        dc_spmat_free(be, a);
        return st;
    }
    *out = a;
    return DC_OK;
}

static void dc_spmat_drop(struct dc_backend *be, void *p)
{
    if (p)
        be->ops.release(be, p);
}

enum dc_status dc_spmat_set_epilogue(struct dc_backend *be, struct dc_spmat *a, const float *scale,
                                     const float *shift)
{
    dc_spmat_drop(be, a->scale);
    dc_spmat_drop(be, a->shift);
    a->scale = a->shift = NULL;
    size_t bytes = (size_t)a->rows * sizeof(float);
    DC_TRY(dc_spmat_put(be, (void **)&a->scale, scale, bytes));
    return dc_spmat_put(be, (void **)&a->shift, shift, bytes);
}

void dc_spmat_free(struct dc_backend *be, struct dc_spmat *a)
{
    if (!a)
        return;
    be->ops.spmat_release(be, a);
    void *arrays[] = {a->rowptr,   a->colidx, a->values, a->gaps, a->codes,
                      a->codebook, a->scale,  a->shift,  a->perm, a->pairs};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        dc_spmat_drop(be, arrays[i]);
    free(a);
}
