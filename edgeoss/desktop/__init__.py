"""The desktop app: the tray launcher (`edgeoss tray`) and what it drives.

settings.py (what the tray remembers), supervisor.py (the server as a child
process), autostart.py (start at login, per OS), controller.py (what each
menu entry does), tray.py (the pystray icon and menu; pystray is imported
only there).
"""
