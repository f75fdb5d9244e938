# Dates as people read them in English, to the second (a computation's timings matter at that grain); the
# time zone is TIME_ZONE's. Django's own English formats are American and stop at the minute.
DATETIME_FORMAT = "j M Y, H:i:s"
