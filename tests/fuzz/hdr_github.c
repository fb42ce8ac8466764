/* hdr_github.c: reaches the static Link header parser of src/io/github.c
 * (link_next, RFC 8288 rel="next") for fuzz_headers. The file is included whole
 * because the parser is static to it; CMake builds this only while link_next
 * keeps its signature. */
#include "../../src/io/github.c"

#include "fuzz_headers.h"

char *fz_link_next(const char *link)
{
    return link_next(link);
}
