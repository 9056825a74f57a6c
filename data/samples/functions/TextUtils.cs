// Small text and number helpers (codecapy's bundled reverse-instruction sample).
using System;
using System.Collections.Generic;

namespace Samples
{
    public static class TextUtils
    {
        /// <summary>Returns true when the text is null, empty or only white space.</summary>
        public static bool IsBlank(string text)
        {
            if (text == null) return true;
            return text.Trim().Length == 0;
        }

        /// <summary>Returns the number of lines in the text (0 for an empty text).</summary>
        public static int CountLines(string text)
        {
            if (text.Length == 0) return 0;
            return text.Split('\n').Length;
        }

        /// <summary>Returns the text without its vowels (a, e, i, o, u in either case).</summary>
        public static string RemoveVowels(string text)
        {
            var kept = new List<char>();
            foreach (char c in text)
            {
                if ("aeiouAEIOU".IndexOf(c) < 0) kept.Add(c);
            }
            return new string(kept.ToArray());
        }

        /// <summary>Returns true when both words use the same letters the same number of times.</summary>
        public static bool IsAnagram(string first, string second)
        {
            char[] a = first.ToLowerInvariant().ToCharArray();
            char[] b = second.ToLowerInvariant().ToCharArray();
            Array.Sort(a);
            Array.Sort(b);
            return new string(a) == new string(b);
        }

        /// <summary>Formats a number of seconds as minutes and seconds, e.g. 125 -> "2:05".</summary>
        public static string FormatDuration(int seconds)
        {
            int minutes = seconds / 60;
            int rest = seconds % 60;
            return minutes + ":" + rest.ToString("00");
        }
    }
}
