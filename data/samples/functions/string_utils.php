<?php
// Small string and array helpers (codecapy's bundled reverse-instruction sample).

/**
 * Turns a snake_case name into camelCase, e.g. "user_first_name" -> "userFirstName".
 */
function snake_to_camel(string $name): string
{
    $parts = explode('_', $name);
    $first = array_shift($parts);
    return $first . implode('', array_map('ucfirst', $parts));
}

/**
 * Returns the average of an array of numbers, or 0 for an empty array.
 */
function average(array $numbers): float
{
    if (count($numbers) === 0) {
        return 0.0;
    }
    return array_sum($numbers) / count($numbers);
}

/**
 * Returns true when the string starts with the given prefix.
 */
function starts_with(string $text, string $prefix): bool
{
    $length = strlen($prefix);
    return substr($text, 0, $length) === $prefix;
}

/**
 * Returns the longest string in an array, or an empty string for an empty array.
 */
function longest_string(array $items): string
{
    $best = '';
    foreach ($items as $item) {
        if (strlen($item) > strlen($best)) {
            $best = $item;
        }
    }
    return $best;
}

/**
 * Returns the array with every value multiplied by the factor.
 */
function scale_values(array $values, float $factor): array
{
    $result = [];
    foreach ($values as $value) {
        $result[] = $value * $factor;
    }
    return $result;
}
