/* test_io_readfile.c: rd_read_file, the one whole-file reader (config, runnerctl,
 * App key, token and webhook secret files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runnerd/core/common.h"
#include "runnerd/io/readfile.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rd_readfile.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    const char *names[] = {"small", "empty", "big"};
    for (size_t i = 0; i < RD_ARRAY_SIZE(names); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

/* Write N bytes of a repeating pattern to DIR/NAME; returns the path (static). */
static const char *make_file(const char *name, size_t n)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fputc('a' + (int)(i % 26), f), 'a' + (int)(i % 26));
    assert_int_equal(fclose(f), 0);
    return path;
}

static void check_content(const char *buf, size_t len, size_t want)
{
    assert_int_equal(len, want);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != 'a' + (int)(i % 26))
            fail_msg("byte %zu differs", i);
    assert_int_equal(buf[len], '\0');
}

static void test_small_and_empty(void **state)
{
    (void)state;
    char *buf = (char *)1;
    size_t len = 99;
    assert_int_equal(rd_read_file(make_file("small", 10), 100, 0, &buf, &len), 0);
    assert_string_equal(buf, "abcdefghij");
    assert_int_equal(len, 10);
    free(buf);
    assert_int_equal(rd_read_file(make_file("empty", 0), 100, 0, &buf, &len), 0);
    assert_string_equal(buf, "");
    assert_int_equal(len, 0);
    free(buf);
}

/* Files across several buffer growths, with and without RD_READ_SECRET, and
 * the size limit exactly at and one past max. */
static void test_growth_and_limit(void **state)
{
    (void)state;
    const size_t sizes[] = {4095, 4096, 4097, 100000, 300001};
    for (size_t i = 0; i < RD_ARRAY_SIZE(sizes); i++) {
        const char *p = make_file("big", sizes[i]);
        for (unsigned flags = 0; flags <= RD_READ_SECRET; flags++) {
            char *buf = NULL;
            size_t len = 0;
            assert_int_equal(rd_read_file(p, sizes[i], flags, &buf, &len), 0);
            check_content(buf, len, sizes[i]);
            free(buf);
            buf = (char *)1;
            assert_int_equal(rd_read_file(p, sizes[i] - 1, flags, &buf, &len), RD_ERANGE);
            assert_null(buf);
            assert_int_equal(len, 0);
        }
    }
}

static void test_errors_keep_errno(void **state)
{
    (void)state;
    char *buf = (char *)1;
    size_t len = 5;
    char path[128];
    snprintf(path, sizeof path, "%s/nonexistent", dir);
    assert_int_equal(rd_read_file(path, 100, 0, &buf, &len), RD_EIO);
    assert_int_equal(errno, ENOENT);
    assert_null(buf);
    assert_int_equal(rd_read_file(dir, 100, RD_READ_SECRET, &buf, &len), RD_EIO);
    assert_int_equal(errno, EISDIR);
    assert_null(buf);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_empty),
        cmocka_unit_test(test_growth_and_limit),
        cmocka_unit_test(test_errors_keep_errno),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
