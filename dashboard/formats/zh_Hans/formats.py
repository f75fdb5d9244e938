# Dates as people read them in Simplified Chinese, to the second; the time zone is TIME_ZONE's.
DATETIME_FORMAT = "Y年n月j日 H:i:s"
