// N-API addon: the pre-DNAT destination of an accepted TCP socket (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), and
// TCP_USER_TIMEOUT for the agent's upstream sockets: the socket options Node has no API for.
//
// getOriginalDestination(fd) -> { address, port, family: 4 | 6 } | null
//   null      the kernel has no conntrack entry for this socket (ENOENT): it was never NATed or tracked
//   throws    TypeError for a bad argument; Error with .code = errno name (EBADF, ENOTSOCK, ...) otherwise
//
// setTcpUserTimeout(fd, ms) -> undefined   TCP_USER_TIMEOUT on an upstream socket (Node has no API for it)
// getTcpUserTimeout(fd) -> ms               what the kernel holds (tests read it back)
//   throws    as above
//
// Only node_api.h is used (ABI-stable), so one build works on every Node line that has NAPI_VERSION 8.

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <node_api.h>

// Values from <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>. Those kernel headers clash
// with glibc's <netinet/in.h>, and these numbers are kernel ABI that never changes.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef TCP_USER_TIMEOUT
#define TCP_USER_TIMEOUT 18
#endif

// Errors a caller can meet here, named as Node names system errors (err.code). Others fall back to "E<n>".
static const char *errno_name(int err, char *fallback, size_t size) {
  switch (err) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOTCONN: return "ENOTCONN";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: snprintf(fallback, size, "E%d", err); return fallback;
  }
}

// Throws Error("<syscall> failed: <CODE> (<strerror>)") with .code = CODE, like Node's own system errors.
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char fallback[16];
  char message[160];
  const char *code = errno_name(err, fallback, sizeof fallback);
  snprintf(message, sizeof message, "%s failed: %s (%s)", syscall, code, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

// Builds { address, port, family } from a sockaddr_in or sockaddr_in6 the kernel filled in.
static napi_value make_result(napi_env env, const struct sockaddr_storage *addr) {
  char text[INET6_ADDRSTRLEN];
  int port;
  int family;
  if (addr->ss_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
    port = ntohs(in4->sin_port);
    family = 4;
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
    family = 6;
  }
  napi_value result, address, port_value, family_value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &port_value);
  napi_create_int32(env, family, &family_value);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", port_value);
  napi_set_named_property(env, result, "family", family_value);
  return result;
}

// Asks conntrack for the original destination at one level; returns 0 or an errno value.
static int original_dst(int fd, int ipv6, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  socklen_t len = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  int rc = ipv6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len)
                : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len);
  return rc == 0 ? 0 : errno;
}

// Reads `value` as a non-negative int32 into *out; otherwise throws a TypeError naming `what` and returns 0.
static int int_argument(napi_env env, napi_value value, const char *signature, const char *what, int *out) {
  napi_valuetype type = napi_undefined;
  double number = -1;
  char message[128];
  napi_typeof(env, value, &type);
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s: %s must be a number", signature, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  napi_get_value_double(env, value, &number);
  if (!isfinite(number) || number < 0 || number > 2147483647.0 || number != floor(number)) {
    snprintf(message, sizeof message, "%s: %s must be a non-negative integer", signature, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return 0;
  }
  *out = (int)number;
  return 1;
}

static napi_value get_original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getOriginalDestination(fd): fd must be a number");
    return NULL;
  }
  int fd;
  if (!int_argument(env, argv[0], "getOriginalDestination(fd)", "fd", &fd)) return NULL;

  // The socket's own family decides which conntrack table to ask.
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) return throw_errno(env, "getsockname", errno);

  struct sockaddr_storage dst;
  int err;
  if (local.ss_family == AF_INET) {
    err = original_dst(fd, 0, &dst);
  } else if (local.ss_family == AF_INET6) {
    // A dual-stack socket carrying IPv4 (::ffff:a.b.c.d) is tracked by IPv4 conntrack; Linux routes SOL_IP
    // options of such a socket to the IPv4 code, so ask there first and fall back to the IPv6 table.
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&local;
    err = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? original_dst(fd, 0, &dst) : -1;
    if (err != 0) err = original_dst(fd, 1, &dst);
  } else {
    return throw_errno(env, "getOriginalDestination", EAFNOSUPPORT);
  }

  if (err == ENOENT) {
    napi_value null_value;
    napi_get_null(env, &null_value);
    return null_value;
  }
  if (err != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", err);
  return make_result(env, &dst);
}

// How long sent data may stay unacknowledged before the kernel drops the connection (ETIMEDOUT); with TCP
// keepalive on, it also bounds how long unanswered probes may go on.
static napi_value set_tcp_user_timeout(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setTcpUserTimeout(fd, ms): fd and ms must be numbers");
    return NULL;
  }
  int fd;
  int ms;
  if (!int_argument(env, argv[0], "setTcpUserTimeout(fd, ms)", "fd", &fd)) return NULL;
  if (!int_argument(env, argv[1], "setTcpUserTimeout(fd, ms)", "ms", &ms)) return NULL;
  unsigned int value = (unsigned int)ms;
  if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &value, sizeof value) != 0) {
    return throw_errno(env, "setsockopt(TCP_USER_TIMEOUT)", errno);
  }
  return NULL;
}

static napi_value get_tcp_user_timeout(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getTcpUserTimeout(fd): fd must be a number");
    return NULL;
  }
  int fd;
  if (!int_argument(env, argv[0], "getTcpUserTimeout(fd)", "fd", &fd)) return NULL;
  unsigned int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &value, &len) != 0) {
    return throw_errno(env, "getsockopt(TCP_USER_TIMEOUT)", errno);
  }
  napi_value result;
  napi_create_uint32(env, value, &result);
  return result;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  export_function(env, exports, "getOriginalDestination", get_original_destination);
  export_function(env, exports, "setTcpUserTimeout", set_tcp_user_timeout);
  export_function(env, exports, "getTcpUserTimeout", get_tcp_user_timeout);
  return exports;
}
