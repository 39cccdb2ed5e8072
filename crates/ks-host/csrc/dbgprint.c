/*
 * DbgPrintEx for the ks-host user-mode stand-in.
 *
 * The kernel routine formats printf-style and transmits at most 512 bytes per call; this one
 * formats with vsnprintf into a 512-byte buffer (truncating the same way) and passes the text
 * to ks_host_debug_output, defined in Rust, which records it for tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

void ks_host_debug_output(uint32_t component, uint32_t level, const char *text, size_t length);

uint32_t DbgPrintEx(uint32_t ComponentId, uint32_t Level, const char *Format, ...)
{
    char buffer[512];
    va_list args;
    int written;

    va_start(args, Format);
    written = vsnprintf(buffer, sizeof buffer, Format, args);
    va_end(args);
    if (written < 0) {
        written = 0;
    }
    if ((size_t)written >= sizeof buffer) {
        written = (int)(sizeof buffer - 1);
    }
    ks_host_debug_output(ComponentId, Level, buffer, (size_t)written);
    return 0; /* STATUS_SUCCESS */
}
