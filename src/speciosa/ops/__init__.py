"""Operations: health endpoint, backup and restore, structured logs, urgent-alert e-mail.

Nothing here is clinical logic; see ``docs/deployment.md`` and ``docs/configuration.md``.
"""
