"""The compliance console: a back-end-for-front-end web application for compliance staff."""
