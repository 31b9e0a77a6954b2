# AppArmor profile demo-nginx, synthesized by profgen from a recording.
# Generalisation rules: docs/apparmor.md.
abi <abi/3.0>,

#include <tunables/global>

profile demo-nginx flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  # capabilities used
  capability chown,
  capability setgid,
  capability setuid,

  # sockets created (family, type)
  network inet stream,
  network unix stream,

  # files
  owner /etc/group r,
  owner /etc/nginx/mime.types r,
  owner /etc/nginx/nginx.conf r,
  owner /etc/nsswitch.conf r,
  owner /etc/passwd r,
  /proc/@{pid}/fd/1 w,  # proc-pid
  owner /run/nginx.pid rw,
  /srv/site/assets/app.css r,
  /srv/site/assets/app.js r,
  /srv/site/assets/favicon.png r,
  /srv/site/assets/logo.svg r,
  /srv/site/assets/tools.json r,
  /srv/site/index.html r,
  /usr/sbin/nginx ix,
  /var/lib/nginx/body/ rw,  # read-back: r added as a next start reads what this run wrote
  /var/lib/nginx/fastcgi/ rw,  # read-back: r added as a next start reads what this run wrote
  /var/lib/nginx/proxy/ rw,  # read-back: r added as a next start reads what this run wrote
  /var/lib/nginx/scgi/ rw,  # read-back: r added as a next start reads what this run wrote
  /var/lib/nginx/uwsgi/ rw,  # read-back: r added as a next start reads what this run wrote

  # failed while recording, not allowed:
  #   /etc/ld.so.cache
  #   /etc/localtime
  #   /sys/devices/system/cpu/online
  #   /usr/lib/ssl/openssl.cnf
  #   the dynamic loader's search of CPU-specific library directories for libcrypt.so.1 (machine-dependent, not listed)
}
