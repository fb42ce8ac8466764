/* labels.h: GitHub's runs-on label matching. */
#ifndef RUNNERD_LABELS_H
#define RUNNERD_LABELS_H

#include <stdbool.h>
#include <stddef.h>

/**
 * True when a runner with runner_labels can take a job asking for job_labels:
 * every job label is among the runner's, compared case-insensitively, with the
 * architecture aliases x64 = amd64 = x86_64 and arm64 = aarch64. An empty job
 * label list matches nothing (GitHub never queues such a job for self-hosted).
 */
bool rd_labels_match(const char *const *job_labels, size_t njob, const char *const *runner_labels,
                     size_t nrunner);

/** True when LABEL is acceptable to GitHub as a runner label (1..256 chars, no commas, printable,
 * no leading/trailing space). */
bool rd_label_valid(const char *label);

#endif
