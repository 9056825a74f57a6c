// Small math and string helpers (codecapy's bundled reverse-instruction sample).
public class MathUtils {

    /** Returns the factorial of n; n must not be negative. */
    public static long factorial(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("n must not be negative");
        }
        long result = 1;
        for (int i = 2; i <= n; i++) {
            result *= i;
        }
        return result;
    }

    /** Returns true when the year is a leap year in the Gregorian calendar. */
    public static boolean isLeapYear(int year) {
        if (year % 400 == 0) {
            return true;
        }
        return year % 4 == 0 && year % 100 != 0;
    }

    /** Counts the vowels (a, e, i, o, u, either case) in a string. */
    public static int countVowels(String text) {
        int count = 0;
        for (char c : text.toLowerCase().toCharArray()) {
            if ("aeiou".indexOf(c) >= 0) {
                count++;
            }
        }
        return count;
    }

    /** Returns the string reversed. */
    public static String reverse(String text) {
        StringBuilder builder = new StringBuilder(text);
        return builder.reverse().toString();
    }

    /** Returns the smallest value of a non-empty int array. */
    public static int minOf(int[] values) {
        int min = values[0];
        for (int v : values) {
            if (v < min) {
                min = v;
            }
        }
        return min;
    }
}
