"""The programs: the daemon (loop and batch accounting), ``replay`` and ``baseline``.

They wire the stages together; nothing below imports them.
"""
