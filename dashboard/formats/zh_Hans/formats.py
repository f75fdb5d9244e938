# Dates as people read them in Simplified Chinese, to the second; the time zone is TIME_ZONE's.
DATETIME_FORMAT = "Y年n月j日 H:i:s"
# Digits grouped by three with commas, as Chinese text writes long numbers (Django's own format leaves them bare).
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
