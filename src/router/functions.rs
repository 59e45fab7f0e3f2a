//! Words that may stand before `(` in a statement that is safe on a
//! replica: built-in functions without side effects and without
//! connection-specific results, plus keywords that take a parenthesis.
//!
//! Anything else followed by `(` may be a stored function (which can write)
//! and sends the statement to the writer. Deliberately *absent*:
//! LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT, GET_LOCK, RELEASE_LOCK,
//! RELEASE_ALL_LOCKS, IS_FREE_LOCK, IS_USED_LOCK, NEXTVAL, LASTVAL, SETVAL,
//! CONNECTION_ID, LOAD_FILE, MASTER_POS_WAIT, MASTER_GTID_WAIT,
//! WAIT_FOR_EXECUTED_GTID_SET.

/// Sorted, upper case; looked up by binary search.
const SAFE_BEFORE_PAREN: &[&str] = &[
    "ABS", "ACOS", "ADDDATE", "ADDTIME", "AES_DECRYPT", "AES_ENCRYPT", "AGAINST", "ALL", "AND", "ANY",
    "AS", "ASCII", "ASIN", "ATAN", "ATAN2", "AVG", "BENCHMARK", "BETWEEN", "BIN", "BINARY",
    "BIT_AND", "BIT_COUNT", "BIT_LENGTH", "BIT_OR", "BIT_XOR", "BY", "CASE", "CAST", "CEIL",
    "CEILING", "CHAR", "CHARACTER_LENGTH", "CHARSET", "CHAR_LENGTH", "CHR", "COALESCE",
    "COERCIBILITY", "COLLATION", "COLUMNS", "COMPRESS", "CONCAT", "CONCAT_WS", "CONV",
    "CONVERT", "CONVERT_TZ", "COS", "COT", "COUNT", "CRC32", "CUME_DIST", "CURDATE",
    "CURRENT_DATE", "CURRENT_ROLE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER",
    "CURTIME", "DATABASE", "DATE", "DATEDIFF", "DATETIME", "DATE_ADD", "DATE_FORMAT",
    "DATE_SUB", "DAY", "DAYNAME", "DAYOFMONTH", "DAYOFWEEK", "DAYOFYEAR", "DEC", "DECIMAL",
    "DECODE", "DEFAULT", "DEGREES", "DENSE_RANK", "DES_DECRYPT", "DES_ENCRYPT", "DISTINCT",
    "DIV", "DOUBLE", "ELSE", "ELT", "ENCODE", "EXCEPT", "EXISTS", "EXP", "EXPORT_SET", "EXTRACT",
    "EXTRACTVALUE", "FIELD", "FIND_IN_SET", "FIRST_VALUE", "FLOAT", "FLOOR", "FORCE", "FORMAT",
    "FORMAT_BYTES", "FORMAT_PICO_TIME", "FROM", "FROM_BASE64", "FROM_DAYS", "FROM_UNIXTIME",
    "GEOMETRYCOLLECTION", "GET_FORMAT", "GREATEST", "GROUP_CONCAT", "HAVING", "HEX", "HOUR",
    "IF", "IFNULL", "IGNORE", "IN", "INDEX", "INET6_ATON", "INET6_NTOA", "INET_ATON",
    "INET_NTOA", "INSERT", "INSTR", "INT", "INTEGER", "INTERSECT", "INTERVAL", "IS", "ISNULL",
    "IS_IPV4", "IS_IPV4_COMPAT", "IS_IPV4_MAPPED", "IS_IPV6", "JOIN", "JSON", "JSON_ARRAY",
    "JSON_ARRAYAGG", "JSON_ARRAY_APPEND", "JSON_ARRAY_INSERT", "JSON_ARRAY_INTERSECT",
    "JSON_COMPACT", "JSON_CONTAINS", "JSON_CONTAINS_PATH", "JSON_DEPTH", "JSON_DETAILED",
    "JSON_EQUALS", "JSON_EXISTS", "JSON_EXTRACT", "JSON_INSERT", "JSON_KEYS", "JSON_LENGTH",
    "JSON_LOOSE", "JSON_MERGE", "JSON_MERGE_PATCH", "JSON_MERGE_PRESERVE", "JSON_NORMALIZE",
    "JSON_OBJECT", "JSON_OBJECTAGG", "JSON_OBJECT_FILTER_KEYS", "JSON_OBJECT_TO_ARRAY",
    "JSON_OVERLAPS", "JSON_PRETTY", "JSON_QUERY", "JSON_QUOTE", "JSON_REMOVE", "JSON_REPLACE",
    "JSON_SCHEMA_VALID", "JSON_SEARCH", "JSON_SET", "JSON_TABLE", "JSON_TYPE", "JSON_UNQUOTE",
    "JSON_VALID", "JSON_VALUE", "KEY", "LAG", "LAST_DAY", "LAST_VALUE", "LATERAL", "LCASE",
    "LEAD", "LEAST", "LEFT", "LENGTH", "LENGTHB", "LIKE", "LIMIT", "LINESTRING", "LN", "LOCALTIME",
    "LOCALTIMESTAMP", "LOCATE", "LOG", "LOG10", "LOG2", "LOWER", "LPAD", "LTRIM", "MAKEDATE",
    "MAKETIME", "MAKE_SET", "MATCH", "MAX", "MD5", "MEDIAN", "MEMBER", "MICROSECOND", "MID", "MIN",
    "MINUTE", "MOD", "MONTH", "MONTHNAME", "MULTILINESTRING", "MULTIPOINT", "MULTIPOLYGON",
    "NATURAL_SORT_KEY", "NCHAR", "NOT", "NOW", "NTH_VALUE", "NTILE", "NULLIF", "NUMERIC", "NVL",
    "NVL2", "OCT", "OCTET_LENGTH", "OF", "ON", "OR", "ORD", "OVER", "PARTITION", "PERCENTILE_CONT",
    "PERCENTILE_DISC", "PERCENT_RANK", "PERIOD_ADD", "PERIOD_DIFF", "PI", "POINT", "POLYGON",
    "POSITION", "POW", "POWER", "QUARTER", "QUOTE", "RADIANS", "RAND", "RANDOM_BYTES", "RANK",
    "REAL", "REGEXP", "REGEXP_INSTR", "REGEXP_LIKE", "REGEXP_REPLACE", "REGEXP_SUBSTR",
    "REPEAT", "REPLACE", "REVERSE", "RIGHT", "RLIKE", "ROUND", "ROW", "ROW_NUMBER", "RPAD",
    "RTRIM", "SCHEMA", "SEC_TO_TIME", "SECOND", "SELECT", "SESSION_USER", "SFORMAT", "SHA",
    "SHA1", "SHA2", "SIGN", "SIGNED", "SIN", "SLEEP", "SOME", "SOUNDEX", "SPACE", "SQRT",
    "STD", "STDDEV", "STDDEV_POP", "STDDEV_SAMP", "STRCMP", "STR_TO_DATE", "ST_AREA",
    "ST_ASBINARY", "ST_ASGEOJSON", "ST_ASTEXT", "ST_ASWKB", "ST_ASWKT", "ST_BUFFER",
    "ST_CENTROID", "ST_CONTAINS", "ST_CROSSES", "ST_DISTANCE", "ST_DISTANCE_SPHERE",
    "ST_ENVELOPE", "ST_EQUALS", "ST_GEOMFROMGEOJSON", "ST_GEOMFROMTEXT", "ST_GEOMFROMWKB",
    "ST_INTERSECTS", "ST_ISVALID", "ST_LENGTH", "ST_OVERLAPS", "ST_POINTFROMTEXT", "ST_SRID",
    "ST_TOUCHES", "ST_WITHIN", "ST_X", "ST_Y", "SUBDATE", "SUBSTR", "SUBSTRING",
    "SUBSTRING_INDEX", "SUBTIME", "SUM", "SYSDATE", "SYSTEM_USER", "SYS_GUID", "TAN", "THEN",
    "TIME", "TIMEDIFF", "TIMESTAMP", "TIMESTAMPADD", "TIMESTAMPDIFF", "TIME_FORMAT",
    "TIME_TO_SEC", "TO_BASE64", "TO_CHAR", "TO_DAYS", "TO_SECONDS", "TRIM", "TRUNCATE", "UCASE",
    "UNCOMPRESS", "UNCOMPRESSED_LENGTH", "UNHEX", "UNION", "UNIX_TIMESTAMP", "UNSIGNED",
    "UPPER", "USE", "USER", "USING", "UTC_DATE", "UTC_TIME", "UTC_TIMESTAMP", "UUID",
    "UUID_SHORT", "VALUES", "VARBINARY", "VARCHAR", "VARIANCE", "VAR_POP", "VAR_SAMP",
    "VERSION", "WEEK", "WEEKDAY", "WEEKOFYEAR", "WEIGHT_STRING", "WHEN", "WHERE", "WINDOW",
    "XOR", "YEAR", "YEARWEEK",
];

/// True when `word` (any case) may be followed by `(` in a replica-safe
/// statement.
pub fn is_safe_before_paren(word: &[u8]) -> bool {
    let mut upper = [0u8; 32];
    if word.len() > upper.len() {
        return false;
    }
    for (dst, src) in upper.iter_mut().zip(word) {
        *dst = src.to_ascii_uppercase();
    }
    let upper = &upper[..word.len()];
    SAFE_BEFORE_PAREN
        .binary_search_by(|probe| probe.as_bytes().cmp(upper))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        for pair in SAFE_BEFORE_PAREN.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn side_effecting_and_session_functions_are_not_safe() {
        for f in [
            "LAST_INSERT_ID", "FOUND_ROWS", "ROW_COUNT", "GET_LOCK", "RELEASE_LOCK", "IS_USED_LOCK",
            "IS_FREE_LOCK", "NEXTVAL", "SETVAL", "LASTVAL", "CONNECTION_ID", "LOAD_FILE",
            "MASTER_POS_WAIT", "my_stored_func",
        ] {
            assert!(!is_safe_before_paren(f.as_bytes()), "{f}");
        }
        assert!(is_safe_before_paren(b"count"));
        assert!(is_safe_before_paren(b"Date_Format"));
    }
}
