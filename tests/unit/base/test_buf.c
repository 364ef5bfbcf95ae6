/* pkg/base: fmw_buf, the storage calls pkg/server uses instead of writing its fields. */
#include "pkg/base/base.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(buf, adopt_release_keep_the_storage)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 100);
    char *mem = malloc(32);
    cr_assert_not_null(mem);
    memset(mem, 'x', 32);
    fmw_buf_adopt(&b, mem, 32);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(fmw_buf_cstr(&b), "");
    cr_expect_eq(fmw_buf_adds(&b, "abc"), FMW_OK);
    cr_expect_eq(b.data, mem, "no reallocation while it fits");
    size_t size = 0;
    char *back = fmw_buf_release(&b, &size);
    cr_expect_eq(back, mem);
    cr_expect_eq(size, 32);
    cr_expect_null(b.data);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(back, "abc");
    free(back);
}

Test(buf, resize_keeps_or_cuts_the_content_and_honours_the_cap)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 15);
    cr_expect_eq(fmw_buf_resize(&b, 8), FMW_OK);
    cr_expect_str_eq(fmw_buf_cstr(&b), "");
    cr_expect_eq(fmw_buf_adds(&b, "1234567"), FMW_OK);
    cr_expect_eq(fmw_buf_resize(&b, 16), FMW_OK);
    cr_expect_str_eq(fmw_buf_cstr(&b), "1234567");
    cr_expect_eq(fmw_buf_resize(&b, 17), FMW_ETOOBIG, "past max + 1");
    cr_expect_eq(fmw_buf_resize(&b, 0), FMW_ETOOBIG);
    cr_expect_eq(fmw_buf_resize(&b, 4), FMW_OK);
    cr_expect_str_eq(fmw_buf_cstr(&b), "123", "cut to what fits with its NUL");
    cr_expect_eq(b.len, 3);
    fmw_buf_free(&b);
}

Test(buf, spare_commit_truncate_consume)
{
    struct fmw_buf b;
    fmw_buf_init(&b, 64);
    size_t room = 99;
    cr_expect_null(fmw_buf_spare(&b, &room));
    cr_expect_eq(room, 0, "no storage, no room");
    cr_assert_eq(fmw_buf_resize(&b, 10), FMW_OK);
    char *p = fmw_buf_spare(&b, &room);
    cr_assert_eq(room, 9);
    memcpy(p, "hello", 5);
    fmw_buf_commit(&b, 5);
    cr_expect_str_eq(fmw_buf_cstr(&b), "hello");
    p = fmw_buf_spare(&b, &room);
    cr_expect_eq(room, 4);
    memcpy(p, "abcd", 4);
    fmw_buf_commit(&b, 4);
    cr_expect_str_eq(fmw_buf_cstr(&b), "helloabcd");
    fmw_buf_spare(&b, &room);
    cr_expect_eq(room, 0, "full: the NUL keeps its byte");
    fmw_buf_truncate(&b, 20);
    cr_expect_str_eq(fmw_buf_cstr(&b), "helloabcd", "not longer: unchanged");
    fmw_buf_truncate(&b, 7);
    cr_expect_str_eq(fmw_buf_cstr(&b), "helloab");
    fmw_buf_consume(&b, 2);
    cr_expect_str_eq(fmw_buf_cstr(&b), "lloab");
    cr_expect_eq(b.len, 5);
    fmw_buf_consume(&b, 50);
    cr_expect_str_eq(fmw_buf_cstr(&b), "");
    cr_expect_eq(b.len, 0);
    fmw_buf_free(&b);
}
