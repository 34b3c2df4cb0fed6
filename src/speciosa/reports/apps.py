"""Django app configuration for charts and the visit report."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Charts (Vega-Lite) and the PDF visit report; no models of its own."""

    name = "speciosa.reports"
    label = "reports"
    verbose_name = "Charts and reports"
