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
  /var/lib/nginx/body/ w,
  /var/lib/nginx/fastcgi/ w,
  /var/lib/nginx/proxy/ w,
  /var/lib/nginx/scgi/ w,
  /var/lib/nginx/uwsgi/ w,

  # failed while recording, not allowed:
  #   /etc/ld.so.cache
  #   /etc/localtime
  #   /sys/devices/system/cpu/online
  #   /usr/lib/ssl/openssl.cnf
  #   /usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v4/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/tls/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/tls/x86_64/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/tls/x86_64/x86_64/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/x86_64/libcrypt.so.1
  #   /usr/lib/x86_64-linux-gnu/x86_64/x86_64/libcrypt.so.1
}
