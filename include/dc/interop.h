/* interop.h: weights in the containers other tools share: NumPy's .npz (a
 * ZIP of .npy arrays, stored or deflated; read and written with libzip) and
 * .safetensors (8-byte header size, a JSON header, raw data; JSON through
 * libcjson).  Export writes a .dcm's decoded dense weights under
 * PyTorch-style names, plus masks, codebooks and codes; import fills a
 * network from such a file, by name or else by order and shape.  Names,
 * layouts and metadata: docs/interop.md.  A build without libzip or libcjson
 * compiles, and the container it lacks fails with DC_ERR_UNSUPPORTED. */
#ifndef DC_INTEROP_H
#define DC_INTEROP_H

#include <stddef.h>
#include <stdint.h>

#include "dc/modelfile.h"
#include "dc/net.h"

#define DC_INTEROP_MAX_DIMS 8
#define DC_INTEROP_NAME_LEN 128

enum dc_interop_dtype { DC_DTYPE_F32 = 0, DC_DTYPE_F64 = 1, DC_DTYPE_U8 = 2 };

/* One named array: C order (row-major), little-endian, host memory. */
struct dc_interop_tensor {
    char name[DC_INTEROP_NAME_LEN];
    enum dc_interop_dtype dtype;
    int ndim;                        /* 0 = a scalar (one element) */
    int64_t shape[DC_INTEROP_MAX_DIMS];
    void *data;                      /* [count * itemsize]; owned */
};

/* The tensors of one file, in file order (npz: ZIP entry order, which is
 * numpy.savez's argument order; safetensors: JSON header order). */
struct dc_interop_set {
    int n, cap;
    struct dc_interop_tensor *t;     /* [n]; owned */
    char *network;                   /* network description (net_text) or NULL; owned */
    char *dataset;                   /* "mnist", "cifar10" or NULL; owned */
};

enum dc_interop_format { DC_INTEROP_NONE = 0, DC_INTEROP_NPZ, DC_INTEROP_SAFETENSORS };

/* By file name: ".npz", ".safetensors", else DC_INTEROP_NONE. */
enum dc_interop_format dc_interop_format_of(const char *path);
size_t dc_interop_itemsize(enum dc_interop_dtype dt);
size_t dc_interop_count(const struct dc_interop_tensor *t);
const char *dc_interop_dtype_name(enum dc_interop_dtype dt); /* "float32", "float64", "uint8" */

/* Append a tensor (data copied); shape has ndim entries. */
enum dc_status dc_interop_add(struct dc_interop_set *set, const char *name, enum dc_interop_dtype dt, int ndim,
                              const int64_t *shape, const void *data);
void dc_interop_free(struct dc_interop_set *set);

/* Read or write a whole container, the format chosen by the file name.
 * Reading checks every length, dtype and shape against the bytes there are;
 * errors are one line naming the file and the tensor. */
enum dc_status dc_interop_read(const char *path, struct dc_interop_set *out);
enum dc_status dc_interop_write(const char *path, const struct dc_interop_set *set);

/* The tensors export writes for a decoded model file (dc_modelfile_read). */
enum dc_status dc_interop_from_modelfile(const struct dc_modelfile *mf, struct dc_interop_set *out);
/* dcexport: read model_path, write out_path (.npz or .safetensors). */
enum dc_status dc_interop_export(const char *model_path, const char *out_path);

/* The PyTorch name of one of our parameters ("conv1.bn.gamma" ->
 * "conv1.bn.weight", ".beta" -> ".bias", others unchanged) and its PyTorch
 * shape (returns ndim): conv weight [out,in,kh,kw], fc weight [out,in],
 * per-channel vectors [n]. */
void dc_interop_torch_name(const char *ours, char *out, size_t len);
int dc_interop_torch_shape(const struct dc_param *p, int64_t *shape);
/* Same for a decoded model file section. */
int dc_interop_torch_shape_mf(const struct dc_modelfile_param *p, int64_t *shape);

/* Fill net's parameter values from set (origin names the file in
 * messages): by name when every parameter has a tensor of its (PyTorch)
 * name, else by order; shapes must match exactly.  map (the config's
 * [init] map, NULL or "" for none) first renames tensors:
 * "file_name:our_name, ...", our_name "-" drops the tensor.  Prints the
 * pairing as a table unless every tensor has its parameter's name.
 * Ignored: names starting "__", "*.num_batches_tracked", and the ".mask",
 * ".codebook" and ".codes" tensors of our own export. */
enum dc_status dc_interop_apply(const struct dc_interop_set *set, struct dc_net *net, const char *origin,
                                const char *map);
/* dc_interop_read + dc_interop_apply (dctrain --init FILE.npz|.safetensors). */
enum dc_status dc_interop_load(const char *path, struct dc_net *net, const char *map);

#endif
