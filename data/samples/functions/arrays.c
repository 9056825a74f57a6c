/* Small array and string helpers (codecapy's bundled reverse-instruction sample). */
#include <ctype.h>
#include <stddef.h>

/* Counts how many times the character ch occurs in a NUL-terminated string. */
int count_char(const char *text, char ch)
{
    int count = 0;
    for (; *text != '\0'; text++) {
        if (*text == ch) {
            count++;
        }
    }
    return count;
}

/* Returns how many of the first n values are negative. */
size_t count_negatives(const int *values, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < 0) {
            count++;
        }
    }
    return count;
}

/* Counts the digits in a NUL-terminated string. */
int count_digits(const char *text)
{
    int count = 0;
    for (; *text != '\0'; text++) {
        if (isdigit((unsigned char)*text)) {
            count++;
        }
    }
    return count;
}

/* Converts a NUL-terminated string to upper case in place. */
void to_upper(char *text)
{
    for (; *text != '\0'; text++) {
        *text = (char)toupper((unsigned char)*text);
    }
}

/* Returns 1 when n is a power of two (1, 2, 4, ...), else 0. */
int is_power_of_two(unsigned int n)
{
    if (n == 0) {
        return 0;
    }
    return (n & (n - 1)) == 0;
}
