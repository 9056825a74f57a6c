# Small text and list helpers (codecapy's bundled reverse-instruction sample).

# Returns the upper-case first letters of the words of +phrase+, e.g. "portable network graphics" -> "PNG".
def acronym(phrase)
  letters = phrase.split.map { |word| word[0].upcase }
  letters.join
end

# Returns +text+ with the first letter of every word capitalized.
def title_case(text)
  words = text.split.map(&:capitalize)
  words.join(" ")
end

# Returns the sum of the even numbers in +numbers+.
def sum_of_evens(numbers)
  evens = numbers.select(&:even?)
  evens.sum
end

# Returns +text+ cut to +limit+ characters, ending in "..." when it was cut.
def truncate(text, limit)
  return text if text.length <= limit
  text[0, limit - 3] + "..."
end

# Returns a hash from each word of +text+ to how often it occurs.
def word_frequencies(text)
  counts = Hash.new(0)
  text.downcase.split.each { |word| counts[word] += 1 }
  counts
end
