// Small vector and string helpers (codecapy's bundled reverse-instruction sample).
#include <algorithm>
#include <string>
#include <vector>

// Returns the median of the values (the mean of the two middle ones for an even count); 0.0 when empty.
double median(std::vector<double> values) {
    if (values.empty()) {
        return 0.0;
    }
    std::sort(values.begin(), values.end());
    size_t mid = values.size() / 2;
    if (values.size() % 2 == 0) {
        return (values[mid - 1] + values[mid]) / 2.0;
    }
    return values[mid];
}

// Returns a copy of the vector sorted in descending order.
std::vector<int> sortedDescending(std::vector<int> values) {
    std::sort(values.begin(), values.end());
    std::reverse(values.begin(), values.end());
    return values;
}

// Returns the text without leading and trailing spaces.
std::string trim(const std::string& text) {
    size_t first = text.find_first_not_of(' ');
    if (first == std::string::npos) {
        return "";
    }
    size_t last = text.find_last_not_of(' ');
    return text.substr(first, last - first + 1);
}

// Returns true when the vector contains the value.
bool containsValue(const std::vector<int>& values, int value) {
    auto it = std::find(values.begin(), values.end(), value);
    return it != values.end();
}

// Joins the words with the separator between them.
std::string join(const std::vector<std::string>& words, const std::string& separator) {
    std::string result;
    for (size_t i = 0; i < words.size(); i++) {
        if (i > 0) {
            result += separator;
        }
        result += words[i];
    }
    return result;
}
