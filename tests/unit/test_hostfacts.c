/* test_hostfacts.c: the pure parsers behind hostfacts (meminfo text, uname -m). */
#include <stdint.h>
#include <string.h>

/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/core/hostfacts_parse.h"

static const char meminfo[] = "MemTotal:       16318156 kB\n"
                              "MemFree:         1234567 kB\n"
                              "MemAvailable:    9876543 kB\n"
                              "Buffers:          123456 kB\n";

static void test_meminfo_real_shape(void **state)
{
    (void)state;
    uint64_t b = 0;
    assert_int_equal(rd_hostfacts_parse_meminfo(meminfo, strlen(meminfo), &b), 0);
    assert_int_equal(b, 16318156ull * 1024);
}

static void test_meminfo_not_first_line_no_newline(void **state)
{
    (void)state;
    const char t[] = "MemFree: 1 kB\nMemTotalX: 5 kB\nMemTotal: 2048 kB";
    uint64_t b = 0;
    assert_int_equal(rd_hostfacts_parse_meminfo(t, strlen(t), &b), 0);
    assert_int_equal(b, 2048ull * 1024);
    /* Only len bytes are read: cut before the MemTotal line. */
    const char *cut = strstr(t, "MemTotal:");
    assert_int_equal(rd_hostfacts_parse_meminfo(t, (size_t)(cut - t), &b), RD_ENOENT);
}

static void test_meminfo_bytes_and_spacing(void **state)
{
    (void)state;
    uint64_t b = 0;
    const char t[] = "MemTotal:\t4096 \r\n";
    assert_int_equal(rd_hostfacts_parse_meminfo(t, strlen(t), &b), 0);
    assert_int_equal(b, 4096);
}

static void test_meminfo_errors(void **state)
{
    (void)state;
    uint64_t b = 7;
    assert_int_equal(rd_hostfacts_parse_meminfo("", 0, &b), RD_ENOENT);
    assert_int_equal(b, 0);
    const char *bad[] = {
        "MemTotal: kB\n",
        "MemTotal: 12 MB\n",
        "MemTotal: -5 kB\n",
        "MemTotal: 99999999999999999999999 kB\n",
        "MemTotal: 18014398509481984 kB\n", /* 2^54 KiB overflows bytes */
    };
    for (size_t i = 0; i < RD_ARRAY_SIZE(bad); i++)
        assert_int_equal(rd_hostfacts_parse_meminfo(bad[i], strlen(bad[i]), &b), RD_EINVAL);
    const char *none = "SwapTotal: 1 kB\nmemtotal: 1 kB\n";
    assert_int_equal(rd_hostfacts_parse_meminfo(none, strlen(none), &b), RD_ENOENT);
}

static void test_arch(void **state)
{
    (void)state;
    assert_int_equal(rd_hostfacts_arch_from_machine("x86_64"), RD_ARCH_X64);
    assert_int_equal(rd_hostfacts_arch_from_machine("amd64"), RD_ARCH_X64);
    assert_int_equal(rd_hostfacts_arch_from_machine("aarch64"), RD_ARCH_ARM64);
    assert_int_equal(rd_hostfacts_arch_from_machine("arm64"), RD_ARCH_ARM64);
    assert_int_equal(rd_hostfacts_arch_from_machine("armv7l"), RD_ARCH_ARM);
    assert_int_equal(rd_hostfacts_arch_from_machine("armv6l"), RD_ARCH_ARM);
    assert_int_equal(rd_hostfacts_arch_from_machine("armv8l"), RD_ARCH_ARM);
    assert_int_equal(rd_hostfacts_arch_from_machine("i686"), RD_ARCH_UNKNOWN);
    assert_int_equal(rd_hostfacts_arch_from_machine("riscv64"), RD_ARCH_UNKNOWN);
    assert_int_equal(rd_hostfacts_arch_from_machine(""), RD_ARCH_UNKNOWN);
    assert_int_equal(rd_hostfacts_arch_from_machine(NULL), RD_ARCH_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meminfo_real_shape),
        cmocka_unit_test(test_meminfo_not_first_line_no_newline),
        cmocka_unit_test(test_meminfo_bytes_and_spacing),
        cmocka_unit_test(test_meminfo_errors),
        cmocka_unit_test(test_arch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
