//! Small number and string helpers (codecapy's bundled reverse-instruction sample).

/// Returns the product of all values in the slice (1 for an empty slice).
pub fn product(values: &[i64]) -> i64 {
    let mut result = 1;
    for v in values {
        result *= v;
    }
    result
}

/// Returns the greatest common divisor of a and b (Euclid's algorithm).
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Returns true when the string reads the same backwards, ignoring case.
pub fn is_mirrored(text: &str) -> bool {
    let lower = text.to_lowercase();
    let reversed: String = lower.chars().rev().collect();
    lower == reversed
}

/// Converts a temperature from degrees Celsius to degrees Fahrenheit.
pub fn celsius_to_fahrenheit(celsius: f64) -> f64 {
    let scaled = celsius * 9.0 / 5.0;
    scaled + 32.0
}

/// Counts the upper-case letters in a string.
pub fn count_uppercase(text: &str) -> usize {
    text.chars()
        .filter(|c| c.is_uppercase())
        .count()
}
