/* report.h: the compression table of Han et al. 2016 (Tables 1-3 layout) from
 * the byte counts the model-file reader keeps: per layer weights, % kept,
 * bits per weight and per index after quantization (Q) and after Huffman
 * (Q+H), bytes, and the rate against the dense float32 model. */
#ifndef DC_REPORT_H
#define DC_REPORT_H

#include <stdio.h>

#include "dc/modelfile.h"

/* Derived figures of one section. Bits are per stored (kept) weight; the
 * index figures include filler entries, and are 0 when positions are implied. */
struct dc_report_row {
    double kept_fraction;
    double weight_bits_q;   /* cluster index width, or 32 for float32 values */
    double weight_bits_qh;  /* value stream bits as stored / kept */
    double index_bits_q;    /* index width x entries / kept */
    double index_bits_qh;   /* position stream bits as stored / kept */
    double rate;            /* 4 x count / section bytes */
};
void dc_report_row(const struct dc_section_stats *s, struct dc_report_row *out);

/* dense_bytes / file_bytes */
double dc_report_rate(const struct dc_modelfile_stats *st);
/* One row per prunable parameter, one row for all other parameters, totals. */
void dc_report_print(FILE *f, const struct dc_modelfile_stats *st);
/* A JSON array with one record per section (all figures above plus byte counts). */
void dc_report_json(FILE *f, const struct dc_modelfile_stats *st);

#endif
