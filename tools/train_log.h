/*
 * train_log.h — miles-train's view of training: the MilesTrainCallback that
 * draws the progress bar (TTY) or plain progress lines, prints evaluations,
 * and writes OUT/log.jsonl and OUT/tb/ (TensorBoard) from the library's
 * training events.  The library itself never prints.
 */
#ifndef MILES_TOOL_TRAIN_LOG_H
#define MILES_TOOL_TRAIN_LOG_H

#include <stdio.h>

#include "miles.h"
#include "tbevents.h"

typedef struct TrainLog {
    int progress;        /* 1: progress and evaluations on stderr */
    int tty;             /* stderr is a terminal: one redrawn bar */
    FILE *jsonl;         /* OUT/log.jsonl (appended on --resume, after the cut) */
    int resume;          /* --resume: log.jsonl is cut back to the checkpoint's step at START, then appended */
    TBWriter *tb;        /* OUT/tb/events.out.tfevents.* (NULL if it could not be created) */
    char path[4200];     /* of log.jsonl */
    double ema_loss;     /* smoothed loss for the bar */
    int64_t step0;       /* first step of this run (for the ETA) */
    int64_t last_step;   /* step of the last STEP event (a progress line every 50 steps) */
} TrainLog;

/* Open OUT/log.jsonl and OUT/tb/; MILES_* status.  When resuming, log.jsonl
 * is opened at the START event, after it is cut back to the lines of steps
 * <= the checkpoint's step (a kill -9 leaves a torn last line and the steps
 * after the last checkpoint, which the resumed run logs again). */
int train_log_open(TrainLog *L, const char *out_dir, int resume, int progress);
/* The MilesTrainCallback (arg = the TrainLog). */
int train_log_event(const MilesTrainEvent *e, void *arg);
void train_log_close(TrainLog *L);

#endif
