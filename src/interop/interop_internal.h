/* interop_internal.h: the per-container readers and writers behind
 * dc_interop_read/write, and the .npy header parser (exposed for tests). */
#ifndef DC_INTEROP_INTERNAL_H
#define DC_INTEROP_INTERNAL_H

#include "dc/interop.h"
#include "dc/status.h"

/* Largest file or array accepted (bytes). */
#define DC_INTEROP_MAX_BYTES ((uint64_t)1 << 32)

enum dc_status dc_npz_read(const char *path, struct dc_interop_set *out);
enum dc_status dc_npz_write(const char *path, const struct dc_interop_set *set);
enum dc_status dc_safetensors_read(const char *path, struct dc_interop_set *out);
enum dc_status dc_safetensors_write(const char *path, const struct dc_interop_set *set);
/* Parse a buffer already in memory (origin names it in messages). */
enum dc_status dc_safetensors_parse(const uint8_t *buf, size_t size, const char *origin,
                                    struct dc_interop_set *out);

/* Parse one .npy image (buf, size) named `what` ("file.npz: entry x.npy")
 * into t (name left as it is): magic, version 1-3, the header dict with
 * 'descr' '<f4', '<f8' or '|u1', 'fortran_order' False and 'shape', then
 * exactly count * itemsize data bytes. */
enum dc_status dc_npy_parse(const uint8_t *buf, size_t size, const char *what, struct dc_interop_tensor *t);
/* A .npy image of t (version 1.0, header padded to 64 bytes); malloc'd. */
enum dc_status dc_npy_build(const struct dc_interop_tensor *t, uint8_t **buf, size_t *size);

/* The index of the tensor called name in set, or -1. */
int dc_interop_find(const struct dc_interop_set *set, const char *name);

/* Whole file into memory (at most DC_INTEROP_MAX_BYTES). */
enum dc_status dc_interop_slurp(const char *path, uint8_t **buf, size_t *size);

/* [init] map applied to view (a copy of orig's tensor records, sharing
 * their data): renames each mapped tensor to its parameter's PyTorch name,
 * or to a "__dropped" name for "-".  Errors (DC_ERR_CONFIG) name the entry. */
enum dc_status dc_interop_rename(struct dc_interop_set *view, const struct dc_interop_set *orig,
                                 const struct dc_net *net, const char *map, const char *origin);

#endif
