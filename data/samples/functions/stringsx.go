// Package stringsx holds small string and slice helpers (codecapy's bundled reverse-instruction sample).
package stringsx

import "strings"

// Contains reports whether target is one of the items.
func Contains(items []string, target string) bool {
	for _, item := range items {
		if item == target {
			return true
		}
	}
	return false
}

// Repeat joins n copies of s with sep between them.
func Repeat(s string, n int, sep string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = s
	}
	return strings.Join(parts, sep)
}

// SumDigits returns the sum of the decimal digits of n (the sign is ignored).
func SumDigits(n int) int {
	if n < 0 {
		n = -n
	}
	total := 0
	for n > 0 {
		total += n % 10
		n /= 10
	}
	return total
}

// IsSorted reports whether values are in non-decreasing order.
func IsSorted(values []int) bool {
	for i := 1; i < len(values); i++ {
		if values[i] < values[i-1] {
			return false
		}
	}
	return true
}

// PadLeft returns s preceded by spaces so that it is at least width bytes long.
func PadLeft(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat(" ", width-len(s)) + s
}
