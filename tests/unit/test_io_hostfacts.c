/* test_io_hostfacts.c: rd_hostfacts_gather on this very host. */
#include <stdint.h>
#include <string.h>
#include <sys/utsname.h>
#include <uv.h>

/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "runnerd/core/common.h"
#include "runnerd/io/hostfacts.h"

static void test_gather(void **state)
{
    (void)state;
    rd_host_facts_t f;
    char name[256];
    assert_int_equal(rd_hostfacts_gather(&f, name, sizeof(name)), 0);
    assert_true(f.cores >= 1);
    assert_int_equal(f.cores, uv_available_parallelism());
    assert_true(f.mem_total >= 64ull << 20);
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    assert_int_equal(f.arch, rd_hostfacts_arch_from_machine(u.machine));
    assert_ptr_equal(f.hostname, name);
    assert_true(strlen(f.hostname) > 0);
    /* Without a buffer the name is empty, never NULL. */
    assert_int_equal(rd_hostfacts_gather(&f, NULL, 0), 0);
    assert_string_equal(f.hostname, "");
    rd_host_facts_t g;
    rd_hostfacts_get(&g, name, sizeof(name));
    assert_int_equal(g.cores, f.cores);
    assert_int_equal(g.mem_total, f.mem_total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gather)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
