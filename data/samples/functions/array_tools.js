// Small array and string helpers (codecapy's bundled reverse-instruction sample).

/**
 * Returns the sum of all numbers in an array.
 */
function sumArray(numbers) {
  let total = 0;
  for (const n of numbers) {
    total += n;
  }
  return total;
}

/**
 * Returns the largest number in an array, or null when the array is empty.
 */
function maxOf(numbers) {
  if (numbers.length === 0) {
    return null;
  }
  return Math.max(...numbers);
}

/**
 * Capitalizes the first letter of a string and lower-cases the rest.
 */
function capitalize(word) {
  if (word.length === 0) {
    return word;
  }
  return word[0].toUpperCase() + word.slice(1).toLowerCase();
}

/**
 * Counts how many times each value occurs in an array; returns an object.
 */
function countValues(items) {
  const counts = {};
  for (const item of items) {
    counts[item] = (counts[item] || 0) + 1;
  }
  return counts;
}

/**
 * Returns a new array without duplicate values, keeping the first occurrence.
 */
function unique(items) {
  const seen = new Set();
  return items.filter((item) => {
    if (seen.has(item)) return false;
    seen.add(item);
    return true;
  });
}

module.exports = { sumArray, maxOf, capitalize, countValues, unique };
