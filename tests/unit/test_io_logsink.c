/* test_io_logsink.c: the shell's log sink: lines reach the FILE, stamped with
 * the wall clock; journal mode only when JOURNAL_STREAM names that very file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "runnerd/core/log.h"
#include "runnerd/io/logsink.h"

static char *slurp(FILE *f)
{
    fflush(f);
    long end = ftell(f);
    assert_true(end >= 0);
    char *s = calloc(1, (size_t)end + 1);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)end, f), (size_t)end);
    return s;
}

static void set_journal_stream(FILE *f, int ino_delta)
{
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char v[64];
    snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + ino_delta);
    assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
}

static void test_file_sink_stamps_wall_clock(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    FILE *f = tmpfile();
    assert_non_null(f);
    rd_logsink_setup(RD_LOG_INFO, RD_LOG_TEXT, f);
    time_t before = time(NULL);
    rd_info("c", "hello");
    rd_debug("c", "filtered");
    char *s = slurp(f);
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ INFO c: hello\n" of this year */
    struct tm tm;
    gmtime_r(&before, &tm);
    char year[16];
    snprintf(year, sizeof(year), "%04d-", tm.tm_year + 1900);
    assert_memory_equal(s, year, 5);
    assert_int_equal(strlen(s), 24 + strlen(" INFO c: hello\n"));
    assert_string_equal(s + 24, " INFO c: hello\n");
    int64_t now = rd_logsink_now_ms();
    assert_true(now / 1000 >= (int64_t)before && now / 1000 <= (int64_t)before + 5);
    free(s);
    fclose(f);
}

static void test_journal_only_when_it_names_the_file(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    set_journal_stream(f, 0);
    assert_true(rd_logsink_is_journal(fileno(f)));
    rd_logsink_setup(RD_LOG_DEBUG, RD_LOG_TEXT, f);
    rd_warn("c", "w");
    rd_debug("c", "d");
    char *s = slurp(f);
    assert_string_equal(s, "<4>WARN c: w\n<7>DEBUG c: d\n");
    free(s);
    fclose(f);

    /* Inherited by a process whose stderr is elsewhere: another inode. */
    f = tmpfile();
    assert_non_null(f);
    set_journal_stream(f, 1);
    assert_false(rd_logsink_is_journal(fileno(f)));
    assert_int_equal(setenv("JOURNAL_STREAM", "garbage", 1), 0);
    assert_false(rd_logsink_is_journal(fileno(f)));
    set_journal_stream(f, 0);
    char v[80];
    snprintf(v, sizeof(v), "%sx", getenv("JOURNAL_STREAM"));
    assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
    assert_false(rd_logsink_is_journal(fileno(f)));
    rd_logsink_setup(RD_LOG_DEBUG, RD_LOG_TEXT, f);
    rd_warn("c", "w");
    s = slurp(f);
    assert_true(s[0] >= '0' && s[0] <= '9');
    assert_non_null(strstr(s, "Z WARN c: w\n"));
    free(s);
    fclose(f);
    unsetenv("JOURNAL_STREAM");
    rd_logsink_setup(RD_LOG_INFO, RD_LOG_TEXT, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sink_stamps_wall_clock),
        cmocka_unit_test(test_journal_only_when_it_names_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
