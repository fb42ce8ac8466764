/* test_common.c: the core's growing string (rd_sbuf), shared by the config
 * summary, the dry-run plan and the metrics page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runnerd/core/common.h"

static void test_sbuf_empty_take(void **state)
{
    (void)state;
    rd_sbuf_t b = {0};
    char *s = rd_sbuf_take(&b);
    assert_string_equal(s, "");
    assert_null(b.s);
    free(s);
}

/* Appends that cross the capacity many times keep every byte and the NUL. */
static void test_sbuf_grows(void **state)
{
    (void)state;
    rd_sbuf_t b = {0};
    for (int i = 0; i < 1000; i++)
        rd_sbuf_printf(&b, "%04d,", i);
    assert_int_equal(b.len, 5000);
    assert_int_equal(strlen(b.s), 5000);
    assert_memory_equal(b.s, "0000,0001,", 10);
    assert_string_equal(b.s + 4995, "0999,");
    rd_sbuf_printf(&b, "%s", ""); /* an empty append changes nothing */
    assert_int_equal(b.len, 5000);
    rd_sbuf_append(&b, "ab\0cd", 3); /* bytes, not a C string: the NUL is kept */
    assert_int_equal(b.len, 5003);
    assert_memory_equal(b.s + 5000, "ab\0", 4);
    char *s = rd_sbuf_take(&b);
    assert_int_equal(b.len, 0);
    free(s);
}

/* A preallocated buffer (metrics starts with 8 KiB) is appended to in place. */
static void test_sbuf_prealloc_exact_fit(void **state)
{
    (void)state;
    rd_sbuf_t b = {rd_xmalloc(4), 0, 4};
    b.s[0] = '\0';
    rd_sbuf_printf(&b, "abc"); /* 3 + NUL fits exactly */
    assert_int_equal(b.cap, 4);
    rd_sbuf_printf(&b, "d");
    assert_string_equal(b.s, "abcd");
    assert_true(b.cap > 4);
    free(rd_sbuf_take(&b));
}

/* One hex digit: the webhook form decoder, the control socket's query decoder and
 * the JSON compactor's \u escapes share it. */
static void test_hexval(void **state)
{
    (void)state;
    assert_int_equal(rd_hexval('0'), 0);
    assert_int_equal(rd_hexval('9'), 9);
    assert_int_equal(rd_hexval('a'), 10);
    assert_int_equal(rd_hexval('F'), 15);
    assert_int_equal(rd_hexval('g'), -1);
    assert_int_equal(rd_hexval('/'), -1);
    assert_int_equal(rd_hexval(':'), -1);
    assert_int_equal(rd_hexval('@'), -1);
    assert_int_equal(rd_hexval('G'), -1);
    assert_int_equal(rd_hexval(0), -1);
    assert_int_equal(rd_hexval((char)0xe9), -1); /* a signed char above 0x7f */
    assert_int_equal(rd_hexval(0xb0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sbuf_empty_take),
        cmocka_unit_test(test_sbuf_grows),
        cmocka_unit_test(test_sbuf_prealloc_exact_fit),
        cmocka_unit_test(test_hexval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
