"""The console's plumbing, shared by every feature's /console pages.

`guard` (login required, CSRF on POST, roles, security headers, the nav), `auth` (staff
passwords, login throttle) and `pages` (the nav registry). The app factory installs the
guard; features only declare `console_pages` next to their blueprint.
"""
