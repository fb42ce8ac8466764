/* main.c: command line. */
#include <stdio.h>

#include "runnerd/common.h"

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("runnerd %s\n", RD_VERSION_STRING);
    return 0;
}
