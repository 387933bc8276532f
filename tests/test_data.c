/* test_data.c: the MNIST and CIFAR-10 readers on real data (when data/ has it)
 * and on small damaged files written here, each of which must fail with a
 * message naming the file and the specific problem.  Exits 77 when the real
 * MNIST is absent and everything else passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "check.h"
#include "dc/data.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void write_bytes(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *b, size_t n)
{
    gzFile g = gzopen(path, "wb");
    if (!g || gzwrite(g, b, (unsigned)n) != (int)n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    gzclose(g);
}

/* A small MNIST-like set in memory: images file and labels file bytes. */
struct idx_set {
    uint8_t *img, *lab;
    size_t img_n, lab_n;
    int count;
};

static void make_idx(struct idx_set *s, int count)
{
    s->count = count;
    s->img_n = 16 + (size_t)count * 784;
    s->lab_n = 8 + (size_t)count;
    s->img = malloc(s->img_n);
    s->lab = malloc(s->lab_n);
    put_be32(s->img, 0x803), put_be32(s->img + 4, (uint32_t)count);
    put_be32(s->img + 8, 28), put_be32(s->img + 12, 28);
    put_be32(s->lab, 0x801), put_be32(s->lab + 4, (uint32_t)count);
    for (size_t i = 16; i < s->img_n; i++)
        s->img[i] = (uint8_t)(1 + rnd() % 255);
    for (int i = 0; i < count; i++)
        s->lab[8 + i] = (uint8_t)(rnd() % 10);
}

static void free_idx(struct idx_set *s)
{
    free(s->img);
    free(s->lab);
}

static char tmp_root[512];

/* A fresh empty folder under the test scratch space. */
static const char *fresh_dir(const char *name, char *buf, size_t len)
{
    char cmd[4096];
    snprintf(buf, len, "%s/%s", tmp_root, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make %s\n", buf);
        exit(1);
    }
    return buf;
}

/* Write train and t10k files of s into dir (gz = compressed). */
static void write_mnist(const char *dir, const struct idx_set *tr, const struct idx_set *te, int gz)
{
    const struct idx_set *sets[2] = {tr, te};
    const char *prefix[2] = {"train", "t10k"};
    for (int k = 0; k < 2; k++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, prefix[k], gz ? ".gz" : "");
        (gz ? write_gz : write_bytes)(p, sets[k]->img, sets[k]->img_n);
        snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, prefix[k], gz ? ".gz" : "");
        (gz ? write_gz : write_bytes)(p, sets[k]->lab, sets[k]->lab_n);
    }
}

/* The load must fail with `want` and a message holding both strings. */
static void expect_fail(const char *what, enum dc_status got, enum dc_status want, const char *s1,
                        const char *s2)
{
    const char *msg = dc_error_msg();
    if (got != want || !strstr(msg, s1) || (s2 && !strstr(msg, s2))) {
        fprintf(stderr, "%s: got %s \"%s\"; expected %s with \"%s\"%s%s%s\n", what, dc_status_str(got), msg,
                dc_status_str(want), s1, s2 ? " and \"" : "", s2 ? s2 : "", s2 ? "\"" : "");
        dc_test_failures++;
    } else {
        printf("  %-28s -> %s\n", what, msg);
    }
}

static void test_mnist_small_good(void)
{
    struct idx_set tr, te;
    make_idx(&tr, 5);
    make_idx(&te, 3);
    for (int gz = 0; gz < 2; gz++) {
        char dir[1024];
        fresh_dir(gz ? "mnist_good_gz" : "mnist_good_raw", dir, sizeof dir);
        write_mnist(dir, &tr, &te, gz);
        struct dc_data d;
        CHECK_OK(dc_mnist_load(dir, 0, 2, &d));
        CHECK(d.train.count == 5 && d.test.count == 2 && d.classes == 10);
        CHECK(d.train.c == 1 && d.train.h == 28 && d.train.w == 28);
        if (d.train.images && d.test.images) {
            CHECK(memcmp(d.train.images, tr.img + 16, 5 * 784) == 0);
            CHECK(memcmp(d.train.labels, tr.lab + 8, 5) == 0);
            CHECK(memcmp(d.test.images, te.img + 16, 2 * 784) == 0);
            CHECK(memcmp(d.test.labels, te.lab + 8, 2) == 0);
        }
        dc_data_free(&d);
        CHECK(d.train.images == NULL && d.test.labels == NULL);
    }
    free_idx(&tr);
    free_idx(&te);
}

/* Each damage applied to a good set must be caught and described. */
static void test_mnist_damaged(void)
{
    struct idx_set tr, te;
    make_idx(&tr, 4);
    make_idx(&te, 2);
    char dir[1024], p[2048];
    struct dc_data d;

    fresh_dir("mnist_truncated", dir, sizeof dir);
    tr.img_n -= 100;
    write_mnist(dir, &tr, &te, 0);
    tr.img_n += 100;
    expect_fail("truncated images", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT, "train-images-idx3-ubyte:",
                "truncated: header says 4 images");

    fresh_dir("mnist_trailing", dir, sizeof dir);
    put_be32(tr.img + 4, 3); /* 4 images of data, the header claims 3 */
    write_mnist(dir, &tr, &te, 0);
    put_be32(tr.img + 4, 4);
    expect_fail("trailing bytes", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT, "train-images-idx3-ubyte:",
                "trailing bytes: header says 3 images of 28x28 (2368 bytes) but the file has 3152 bytes");

    fresh_dir("mnist_short_labels", dir, sizeof dir);
    te.lab_n -= 1; /* te labels now 1 byte short: the count in its header no longer fits */
    write_mnist(dir, &tr, &te, 1);
    te.lab_n += 1;
    expect_fail("truncated labels (gz)", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT,
                "t10k-labels-idx1-ubyte.gz:", "truncated");

    fresh_dir("mnist_magic", dir, sizeof dir);
    put_be32(tr.img, 0x801);
    write_mnist(dir, &tr, &te, 1);
    put_be32(tr.img, 0x803);
    expect_fail("wrong magic", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT, "train-images-idx3-ubyte.gz:",
                "wrong magic 0x00000801 (expected 0x00000803");

    fresh_dir("mnist_count", dir, sizeof dir);
    struct idx_set short_lab;
    make_idx(&short_lab, 3);
    struct idx_set mixed = tr;
    mixed.lab = short_lab.lab, mixed.lab_n = short_lab.lab_n;
    write_mnist(dir, &mixed, &te, 0);
    expect_fail("count mismatch", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT, "has 4 images but",
                "train-labels-idx1-ubyte has 3 labels");
    free_idx(&short_lab);

    fresh_dir("mnist_label", dir, sizeof dir);
    te.lab[8 + 1] = 10;
    write_mnist(dir, &tr, &te, 0);
    te.lab[8 + 1] = 3;
    expect_fail("label out of range", dc_mnist_load(dir, 0, 0, &d), DC_ERR_FORMAT, "t10k-labels-idx1-ubyte:",
                "label 10 at index 1 is out of range");

    fresh_dir("mnist_missing", dir, sizeof dir);
    write_mnist(dir, &tr, &te, 0);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
    remove(p);
    expect_fail("missing file", dc_mnist_load(dir, 0, 0, &d), DC_ERR_IO, "t10k-images-idx3-ubyte[.gz]: not found",
                "fetch-data.sh mnist");
    CHECK(d.train.images == NULL); /* the half-loaded set was freed */
    free_idx(&tr);
    free_idx(&te);
}

/* sparse = 1: mostly-zero pixels like real digits, so gzip really deflates
 * (Huffman blocks); sparse = 0: random pixels, which gzip stores verbatim. */
static void test_gzip_damaged(int sparse)
{
    struct idx_set s;
    make_idx(&s, 40);
    for (size_t i = 16; sparse && i < s.img_n; i++)
        if (rnd() % 5)
            s.img[i] = 0;
    char dir[1024], p[2048], what[64];
    fresh_dir("gzip", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(p, s.img, s.img_n);
    uint8_t *gz = malloc(s.img_n + 1024), *out = NULL;
    size_t gz_n, out_n;
    FILE *f = fopen(p, "rb");
    gz_n = fread(gz, 1, s.img_n + 1024, f);
    fclose(f);
    CHECK(gz_n > 1000 && gz[0] == 0x1f && gz[1] == 0x8b);
    CHECK(sparse ? gz_n < s.img_n / 2 : gz_n > s.img_n);

    CHECK_OK(dc_read_file_maybe_gz(p, &out, &out_n));
    CHECK(out_n == s.img_n && out && memcmp(out, s.img, s.img_n) == 0);
    free(out);

    /* Scrambled bytes in the middle: deflate or the CRC-32 trailer must notice. */
    for (size_t i = gz_n / 2; i < gz_n / 2 + 16; i++)
        gz[i] ^= 0x5a;
    write_bytes(p, gz, gz_n);
    snprintf(what, sizeof what, "gzip %s corrupt in the middle", sparse ? "deflated" : "stored");
    expect_fail(what, dc_read_file_maybe_gz(p, &out, &out_n), DC_ERR_FORMAT, "train-images-idx3-ubyte.gz:",
                "gzip");
    for (size_t i = gz_n / 2; i < gz_n / 2 + 16; i++)
        gz[i] ^= 0x5a;

    write_bytes(p, gz, gz_n / 2);
    snprintf(what, sizeof what, "gzip %s cut in half", sparse ? "deflated" : "stored");
    expect_fail(what, dc_read_file_maybe_gz(p, &out, &out_n), DC_ERR_FORMAT, "train-images-idx3-ubyte.gz:",
                "truncated gzip");

    snprintf(p, sizeof p, "%s/no-such-file", dir);
    expect_fail("read missing file", dc_read_file_maybe_gz(p, &out, &out_n), DC_ERR_IO, "no-such-file: cannot open",
                "No such file");
    free(gz);
    free_idx(&s);
}

/* Fuzz finding: the gzip trailer's size was trusted as the first buffer size
 * (a 300-byte file asked for 3.4 GB), and inflating had no bound.  Now the
 * trailer counts only when the compressed size can justify it, and a file
 * that inflates beyond 256 MiB (a bomb: 1 MiB gzip members of zeros) fails
 * with a message instead of taking memory. */
static void test_gzip_huge(void)
{
    struct idx_set s;
    make_idx(&s, 2);
    char dir[1024], p[2048];
    fresh_dir("gzip_huge", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/t.gz", dir);
    write_gz(p, s.img, s.img_n);
    uint8_t gz[4096], *out = NULL;
    size_t out_n;
    FILE *f = fopen(p, "rb");
    size_t gz_n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    CHECK(gz_n > 18 && gz_n < sizeof gz);
    put_be32(gz + gz_n - 4, 0xf0ffffffu); /* trailer: 4 GB - 16 (little-endian) */
    write_bytes(p, gz, gz_n);
    expect_fail("gzip trailer claims 4 GB", dc_read_file_maybe_gz(p, &out, &out_n), DC_ERR_FORMAT, "t.gz:", "gzip");

    const size_t mib = (size_t)1 << 20;
    uint8_t *zeros = calloc(mib, 1), *member = malloc(mib);
    uLongf member_n = mib;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = zeros, zs.avail_in = (uInt)mib, zs.next_out = member, zs.avail_out = (uInt)member_n;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    member_n = zs.total_out;
    deflateEnd(&zs);
    f = fopen(p, "wb");
    for (int i = 0; i < 257; i++)
        CHECK(fwrite(member, 1, member_n, f) == member_n);
    fclose(f);
    expect_fail("gzip bomb of 257 MiB", dc_read_file_maybe_gz(p, &out, &out_n), DC_ERR_FORMAT, "t.gz:",
                "inflates to more than 256 MiB");
    free(zeros);
    free(member);
    free_idx(&s);
}

/* A CIFAR-10 batch of 10000 random records (labels < 10). */
static uint8_t *make_cifar_batch(void)
{
    size_t n = 10000u * 3073u;
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rnd();
    for (size_t r = 0; r < 10000; r++)
        b[r * 3073] = (uint8_t)(rnd() % 10);
    return b;
}

static void test_cifar_files(void)
{
    char dir[1024], sub[1024], p[2048];
    struct dc_data d;
    uint8_t *batch = make_cifar_batch();
    const size_t n = 10000u * 3073u;

    fresh_dir("cifar_good", dir, sizeof dir);
    fresh_dir("cifar_good/cifar-10-batches-bin", sub, sizeof sub);
    snprintf(p, sizeof p, "%s/data_batch_1.bin", sub);
    write_bytes(p, batch, n);
    snprintf(p, sizeof p, "%s/test_batch.bin", sub);
    write_bytes(p, batch, n);
    CHECK_OK(dc_cifar10_load(dir, 300, 7, &d)); /* found in the subfolder; limits read only batch 1 */
    CHECK(d.train.count == 300 && d.test.count == 7 && d.classes == 10);
    CHECK(d.train.c == 3 && d.train.h == 32 && d.train.w == 32);
    if (d.train.images) {
        CHECK(d.train.labels[299] == batch[299 * 3073]);
        CHECK(memcmp(d.train.images + 299 * 3072, batch + 299 * 3073 + 1, 3072) == 0);
        CHECK(memcmp(d.test.images + 6 * 3072, batch + 6 * 3073 + 1, 3072) == 0);
    }
    dc_data_free(&d);
    expect_fail("missing data_batch_2", dc_cifar10_load(dir, 10001, 0, &d), DC_ERR_IO, "data_batch_2.bin: not found",
                "fetch-data.sh cifar10");

    batch[7 * 3073] = 10;
    snprintf(p, sizeof p, "%s/data_batch_1.bin", sub);
    write_bytes(p, batch, n);
    expect_fail("cifar label out of range", dc_cifar10_load(dir, 5, 5, &d), DC_ERR_FORMAT, "data_batch_1.bin:",
                "label 10 of record 7 is out of range");

    fresh_dir("cifar_bad", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
    write_bytes(p, batch, 2 * 3073 + 5);
    expect_fail("cifar size not multiple", dc_cifar10_load(dir, 0, 0, &d), DC_ERR_FORMAT, "data_batch_1.bin:",
                "size 6151 bytes is not a multiple of the 3073-byte record");
    write_bytes(p, batch, 2 * 3073);
    expect_fail("cifar record count", dc_cifar10_load(dir, 0, 0, &d), DC_ERR_FORMAT, "data_batch_1.bin:",
                "holds 2 records, expected 10000");

    fresh_dir("cifar_none", dir, sizeof dir);
    expect_fail("cifar folder empty", dc_cifar10_load(dir, 0, 0, &d), DC_ERR_IO, "data_batch_1.bin: not found",
                "cifar-10-batches-bin");
    free(batch);
}

/* Pixel mean over a dataset's images, in units of x/255. */
static double pixel_mean(const struct dc_dataset *s)
{
    size_t n = (size_t)s->count * s->c * s->h * s->w;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s->images[i];
    return sum / (255.0 * (double)n);
}

static int all_classes_present(const struct dc_dataset *s)
{
    int seen[10] = {0}, bad = 0;
    for (int i = 0; i < s->count; i++) {
        if (s->labels[i] < 10)
            seen[s->labels[i]] = 1;
        else
            bad = 1;
    }
    for (int k = 0; k < 10; k++)
        bad |= !seen[k];
    return !bad;
}

static int test_real_mnist(void)
{
    char dir[1024];
    if (!test_data_dir("mnist", dir, sizeof dir)) {
        printf("  real MNIST: no data/mnist (run scripts/fetch-data.sh mnist); skipped\n");
        return 0;
    }
    struct dc_data d;
    CHECK_OK(dc_mnist_load(dir, 2000, 500, &d));
    CHECK(d.train.count == 2000 && d.test.count == 500 && d.classes == 10);
    CHECK(d.train.c == 1 && d.train.h == 28 && d.train.w == 28 && d.test.h == 28);
    CHECK(fabsf(d.mean[0] - 0.1307f) < 1e-6f && fabsf(d.std[0] - 0.3081f) < 1e-6f);
    if (d.train.images && d.test.images) {
        CHECK(d.train.labels[0] == 5); /* the official training set starts with a 5 */
        CHECK(d.test.labels[0] == 7);  /* and the test set with a 7 */
        CHECK(all_classes_present(&d.train) && all_classes_present(&d.test));
        double m = pixel_mean(&d.train);
        CHECK(m > 0.11 && m < 0.15); /* about 0.1307: a header misread shifts it */
        printf("  real MNIST: train %d, test %d, pixel mean %.4f\n", d.train.count, d.test.count, m);
    }
    dc_data_free(&d);
    return 1;
}

static void test_real_cifar(void)
{
    char dir[1024];
    if (!test_data_dir("cifar10", dir, sizeof dir)) {
        printf("  real CIFAR-10: no data/cifar10 (run scripts/fetch-data.sh cifar10); skipped\n");
        return;
    }
    struct dc_data d;
    CHECK_OK(dc_cifar10_load(dir, 1000, 300, &d));
    CHECK(d.train.count == 1000 && d.test.count == 300 && d.classes == 10);
    CHECK(d.train.c == 3 && d.train.h == 32 && d.train.w == 32 && d.test.c == 3);
    if (d.train.images && d.test.images) {
        CHECK(all_classes_present(&d.train) && all_classes_present(&d.test));
        double m = pixel_mean(&d.train);
        CHECK(m > 0.42 && m < 0.52); /* about 0.47 over the three channels */
        printf("  real CIFAR-10: train %d, test %d, pixel mean %.4f\n", d.train.count, d.test.count, m);
    }
    dc_data_free(&d);
}

int main(void)
{
    rng_state = (uint64_t)time(NULL) * 2654435761u + 1;
    test_tmp_path("test_data.tmp", tmp_root, sizeof tmp_root);
    test_mnist_small_good();
    test_mnist_damaged();
    test_gzip_damaged(0);
    test_gzip_damaged(1);
    test_gzip_huge();
    test_cifar_files();
    int had_mnist = test_real_mnist();
    test_real_cifar();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_root);
    int rc = test_finish("test_data");
    return (rc == 0 && !had_mnist) ? DC_TEST_SKIP : rc;
}
