/*
 * tbevents.h — TensorBoard event files (events.out.tfevents.<time>.<host>):
 * TFRecord framing with masked CRC-32C, scalar summaries (simple_value).
 * miles-train writes its training curves with it.
 */
#ifndef MILES_TOOL_TBEVENTS_H
#define MILES_TOOL_TBEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "miles.h"

typedef struct TBWriter TBWriter;
/* Create an event file in `dir` (MILES_* status; message in miles_last_error()). */
int tb_open(TBWriter **out, const char *dir);
int tb_scalar(TBWriter *w, const char *tag, int64_t step, float value);
int tb_flush(TBWriter *w);
void tb_close(TBWriter *w);
const char *tb_path(const TBWriter *w);
/* CRC-32C (Castagnoli) of n bytes, continuing from crc (start with 0). */
uint32_t tb_crc32c(uint32_t crc, const void *data, size_t n);

#endif
