"""Spanish: ISO first (see speciosa.formats), then Django's Spanish input formats."""

from django.conf.locale.es import formats as _django

DATE_INPUT_FORMATS = ["%Y-%m-%d", *_django.DATE_INPUT_FORMATS]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M",
                          *_django.DATETIME_INPUT_FORMATS]
TIME_INPUT_FORMATS = ["%H:%M:%S", "%H:%M:%S.%f", "%H:%M"]
