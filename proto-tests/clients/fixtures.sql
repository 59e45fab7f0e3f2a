-- Shared read-only fixtures of one run. ./run replaces @RUN@ with the run's
-- prefix, runs this on m1 and waits until r1 and r2 have applied it, so
-- reads routed to any replica see the same rows as m1.

-- One row of extremes, one row of NULLs, one row of small/odd values: every
-- column type a client has to decode (text and binary protocol).
CREATE TABLE @RUN@_types (
  id INT NOT NULL PRIMARY KEY,
  c_tinyint TINYINT,
  c_tinyint_u TINYINT UNSIGNED,
  c_bool TINYINT(1),
  c_smallint SMALLINT,
  c_mediumint MEDIUMINT,
  c_int INT,
  c_int_u INT UNSIGNED,
  c_bigint BIGINT,
  c_bigint_u BIGINT UNSIGNED,
  c_decimal DECIMAL(10,3),
  c_float FLOAT,
  c_double DOUBLE,
  c_bit BIT(10),
  c_date DATE,
  c_datetime DATETIME(6),
  c_timestamp TIMESTAMP(3) NULL DEFAULT NULL,
  c_time TIME(6),
  c_year YEAR,
  c_char CHAR(5),
  c_varchar VARCHAR(50),
  c_text TEXT,
  c_varbinary VARBINARY(20),
  c_blob BLOB,
  c_json JSON,
  c_enum ENUM('a','b'),
  c_set SET('x','y')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

INSERT INTO @RUN@_types VALUES
 (1, -128, 255, 1, -32768, -8388608, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615,
  -1234567.891, 3.25, -1.5e300,
  b'1010101010', '0000-00-00', '2024-02-29 23:59:59.123456',
  '2024-01-01 12:34:56.789', '-838:59:59.000000', 2155,
  'ab', 'héllo 😀 wörld', 'text with \'quote\' and \\ backslash',
  0x00FF10, 0x000102FFFE7F80,
  '{"a": [1, 2.5, "x"], "b": null, "c": "é"}', 'b', 'x,y'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 127, 0, 0, 32767, 8388607, 2147483647, 0,
  9223372036854775807, 0,
  0.001, -0.5, 0.1,
  b'0', '1000-01-01', '1000-01-01 00:00:00.000001',
  '1970-01-02 00:00:00.000', '-00:00:01.500000', 1901,
  '', '', '',
  '', '',
  '[]', 'a', '');

-- Two result sets (plus the trailing OK of CALL).
DELIMITER //
CREATE PROCEDURE @RUN@_two_results(IN n INT)
BEGIN
  SELECT n AS n, 'first' AS which;
  SELECT id, c_varchar, c_decimal FROM @RUN@_types WHERE id <= n ORDER BY id;
END//
DELIMITER ;
