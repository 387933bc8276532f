/* report.c: prints the per-layer compression table and its JSON form from
 * the model-file byte counts, so the figures are those of the file on disk. */
#include <inttypes.h>

#include "dc/report.h"

void dc_report_row(const struct dc_section_stats *s, struct dc_report_row *out)
{
    double kept = s->kept ? (double)s->kept : 1.0;
    out->kept_fraction = s->count ? (double)s->kept / (double)s->count : 0.0;
    out->weight_bits_q = s->bits ? (double)s->bits : s->kind == DC_SECTION_DENSE16 ? 16.0 : 32.0;
    out->weight_bits_qh = (double)s->value_stream_bits / kept;
    out->index_bits_q = s->index_bits ? (double)s->index_bits * (double)s->entries / kept : 0.0;
    out->index_bits_qh = s->index_bits ? (double)s->index_stream_bits / kept : 0.0;
    out->rate = s->total_bytes ? 4.0 * (double)s->count / (double)s->total_bytes : 0.0;
}

double dc_report_rate(const struct dc_modelfile_stats *st)
{
    return st->file_bytes ? (double)st->dense_bytes / (double)st->file_bytes : 0.0;
}

void dc_report_print(FILE *f, const struct dc_modelfile_stats *st)
{
    fprintf(f, "%-20s %10s %7s %8s %6s %8s %6s %10s %8s\n", "layer", "weights", "kept", "w-bits", "w+H",
            "i-bits", "i+H", "bytes", "rate");
    uint64_t other_n = 0, other_bytes = 0, other_value_bytes = 0, all_n = 0, all_kept = 0;
    int other = 0;
    for (int i = 0; i < st->nsections; i++) {
        const struct dc_section_stats *s = &st->s[i];
        all_n += s->count;
        all_kept += s->kept;
        if (!s->prunable) {
            other_n += s->count, other_bytes += s->total_bytes, other_value_bytes += s->value_bytes, other++;
            continue;
        }
        struct dc_report_row r;
        dc_report_row(s, &r);
        fprintf(f, "%-20s %10" PRIu64 " %6.2f%% %8.2f %6.2f ", s->name, s->count, 100.0 * r.kept_fraction,
                r.weight_bits_q, r.weight_bits_qh);
        if (s->index_bits)
            fprintf(f, "%8.2f %6.2f", r.index_bits_q, r.index_bits_qh);
        else
            fprintf(f, "%8s %6s", "-", "-");
        fprintf(f, " %10" PRIu64 " %7.1fx\n", s->total_bytes, r.rate);
    }
    /* 32 for float32, 16 for half ([encode] dense_bits), between for a file mixing both */
    if (other)
        fprintf(f, "%-20s %10" PRIu64 " %7s %8.4g %6s %8s %6s %10" PRIu64 " %7.1fx\n", "other params", other_n,
                "100%", other_n ? 8.0 * (double)other_value_bytes / (double)other_n : 32.0, "-", "-", "-",
                other_bytes, other_bytes ? 4.0 * (double)other_n / (double)other_bytes : 0.0);
    fprintf(f, "%-20s %10" PRIu64 " %6.2f%% %8s %6s %8s %6s %10" PRIu64 " %7.1fx\n", "total (file)", all_n,
            all_n ? 100.0 * (double)all_kept / (double)all_n : 0.0, "", "", "", "", st->file_bytes, dc_report_rate(st));
    fprintf(f, "dense float32: %" PRIu64 " bytes; file: %" PRIu64 " bytes (header %" PRIu64
            "); compression rate %.1fx\n", st->dense_bytes, st->file_bytes, st->header_bytes, dc_report_rate(st));
}

/* Parameter names are printable ASCII but may hold a quote or a backslash. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void dc_report_json(FILE *f, const struct dc_modelfile_stats *st)
{
    fprintf(f, "[");
    for (int i = 0; i < st->nsections; i++) {
        const struct dc_section_stats *s = &st->s[i];
        struct dc_report_row r;
        dc_report_row(s, &r);
        fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
        json_string(f, s->name);
        fprintf(f, ", \"kind\": \"%s\", \"prunable\": %d, \"weights\": %" PRIu64
                ", \"kept\": %" PRIu64 ", \"kept_fraction\": %.6f, \"bits\": %d, \"index_bits\": %d, "
                "\"entries\": %" PRIu64 ", \"weight_bits_q\": %.4f, \"weight_bits_qh\": %.4f, "
                "\"index_bits_q\": %.4f, \"index_bits_qh\": %.4f, \"value_bytes\": %" PRIu64
                ", \"index_bytes\": %" PRIu64 ", \"codebook_bytes\": %" PRIu64 ", \"table_bytes\": %" PRIu64
                ", \"overhead_bytes\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"rate\": %.4f}",
                s->kind == DC_SECTION_DENSE ? "dense" : s->kind == DC_SECTION_DENSE16 ? "dense16"
                : s->kind == DC_SECTION_CODED16 ? "coded16" : "coded",
                s->prunable, s->count, s->kept, r.kept_fraction, s->bits, s->index_bits, s->entries,
                r.weight_bits_q, r.weight_bits_qh,
                r.index_bits_q, r.index_bits_qh, s->value_bytes, s->index_bytes, s->codebook_bytes,
                s->table_bytes, s->overhead_bytes, s->total_bytes, r.rate);
    }
    fprintf(f, "%s]", st->nsections ? "\n" : "");
}
