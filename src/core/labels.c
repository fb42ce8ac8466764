/* labels.c: GitHub's runs-on label matching (DESIGN.md section 2 "Label matching"). */
#include "runnerd/core/labels.h"

#include <string.h>
#include <strings.h>

/* Architecture words that GitHub treats as one label. Each row is one class;
 * the first word is its canonical spelling. */
static const char *const arch_aliases[][3] = {
    {"x64", "amd64", "x86_64"},
    {"arm64", "aarch64", NULL},
};

/* The alias class of LABEL, or -1 when it is not an architecture word. */
static int arch_class(const char *label)
{
    for (size_t c = 0; c < sizeof(arch_aliases) / sizeof(arch_aliases[0]); c++) {
        for (size_t w = 0; w < 3 && arch_aliases[c][w] != NULL; w++) {
            if (strcasecmp(label, arch_aliases[c][w]) == 0)
                return (int)c;
        }
    }
    return -1;
}

/* Two labels name the same thing: equal ignoring ASCII case, or aliases of
 * one architecture. */
static bool label_equal(const char *a, const char *b)
{
    if (strcasecmp(a, b) == 0)
        return true;
    int ca = arch_class(a);
    return ca >= 0 && ca == arch_class(b);
}

bool rd_labels_match(const char *const *job_labels, size_t njob, const char *const *runner_labels,
                     size_t nrunner)
{
    /* GitHub never hands a self-hosted runner a job without labels, so an
     * empty runs-on must not look like "matches everything". */
    if (job_labels == NULL || njob == 0)
        return false;
    for (size_t i = 0; i < njob; i++) {
        if (job_labels[i] == NULL)
            return false;
        bool found = false;
        for (size_t j = 0; j < nrunner && !found; j++) {
            if (runner_labels[j] != NULL && label_equal(job_labels[i], runner_labels[j]))
                found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

bool rd_label_valid(const char *label)
{
    if (label == NULL)
        return false;
    size_t n = strlen(label);
    if (n == 0 || n > 256)
        return false;
    if (label[0] == ' ' || label[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)label[i];
        /* Printable ASCII only: control bytes, DEL and non-ASCII bytes could
         * smuggle terminal escapes or odd encodings into argv and logs. */
        if (ch < 0x20 || ch >= 0x7f || ch == ',')
            return false;
    }
    return true;
}
