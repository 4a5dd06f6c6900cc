/* SPDX-License-Identifier: MIT */
/*
 * netfilterqueue: the python-netfilterqueue module (same classes, methods,
 * defaults, exceptions and messages) on top of libnfqb, without the old
 * 4096-byte buffer and with libnfqb's extra metadata and queue flags.
 *
 * Every libnfqb call happens with the GIL held, so Python threads never
 * meet inside the library; only the wait for packets in a blocking run()
 * releases it. Callbacks therefore run with the GIL already held.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nfqb/agent.h>
#include <nfqb/queue.h>

#include "ipv6ext.h"

#define MODULE_VERSION "1.1.0"

#if PY_VERSION_HEX < 0x030A0000   /* Debian 11's 3.9 and older */
static inline PyObject *compat_newref(PyObject *o)
{
	Py_INCREF(o);
	return o;
}
#define Py_NewRef(o) compat_newref((PyObject *)(o))
#endif
#if PY_VERSION_HEX < 0x03090000
#define PyObject_CallOneArg(f, a) PyObject_CallFunctionObjArgs((f), (a), NULL)
#endif

/* One netlink record can carry a 64 KiB payload plus its attributes. */
#define RECV_SIZE (65536 + 8192)

#define MSG_VERDICT_GIVEN "Verdict already given for this packet"
#define MSG_UNBOUND "Parent queue has already been unbound"
#define MSG_NO_PAYLOAD "Packet has no payload -- perhaps you're using COPY_META mode?"
#define MSG_PAYLOAD_GONE \
	"Payload data is no longer available. You must call retain() within " \
	"the user_callback in order to copy the payload if you need to expect " \
	"it after your callback has returned."
#define MSG_ALREADY_BOUND "A queue is already bound; use unbind() first"

/* What the queue object is doing while libnfqb may call back into Python. */
enum nfq_mode {
	MODE_IDLE,     /* no library call under way */
	MODE_RUN,      /* run(): a callback error stops the run and is raised */
	MODE_HANDLE,   /* run_socket(): a callback error is raised after the buffer */
	MODE_CONFIG,   /* bind/unbind: nobody to raise to, errors are unraisable */
};

typedef struct {
	PyObject_HEAD
	struct nfqb_queue *q;
	PyObject *callback;        /* user_callback while bound */
	PyObject *exc;             /* first error raised by the callback in this run */
	PyObject *weakrefs;
	int num;                   /* bound queue number, -1 when none */
	uint64_t gen;              /* bumped by each unbind: orphans old packets */
	enum nfq_mode mode;
	const char *context;       /* MODE_CONFIG: what the library is doing */
	bool unbind_pending;       /* unbind() was called from a callback */
	bool cb_failed;
	bool closing;
} NFQObject;

enum { DEV_IN, DEV_OUT, DEV_PHYSIN, DEV_PHYSOUT, NDEV };

typedef struct {
	PyObject_HEAD
	NFQObject *queue;          /* strong: verdicts need the socket */
	struct nfqb_packet *p;     /* in the callback: the library's; later: our copy or NULL */
	uint64_t gen;
	bool live;                 /* its callback is running */
	bool owned;                /* p is a retained copy we release */
	bool payload_ok;           /* retain() was called: payload readable after the callback */
	bool verdict_set;
	bool mark_set;
	bool has_uid, has_gid, has_ts, has_skbinfo;
	uint8_t hook;
	uint8_t hw_len;
	uint8_t hw[8];
	uint16_t hw_protocol;
	uint16_t queue_num;
	uint32_t id;
	uint32_t mark;
	uint32_t given_mark;
	uint32_t cap_len;
	uint32_t ifindex[NDEV];
	uint32_t uid, gid, skbinfo;
	Py_ssize_t payload_len;
	struct timespec ts;
	PyObject *given_payload;   /* bytes from set_payload(), or NULL */
	PyObject *owned_payload;   /* bytes kept by retain() when no copy could be made */
	PyObject *names[NDEV];     /* resolved interface names (str or None) */
	PyObject *secctx;
} PacketObject;

static PyTypeObject NFQType;
static PyTypeObject PacketType;
static PyObject *ctx_unbind;   /* the "object" of unraisable callback errors */
static PyObject *ctx_bind;

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* The raised exception as one object (traceback attached), clearing it; NULL if none. */
static PyObject *exc_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyErr_GetRaisedException();
#else
	PyObject *t, *v, *tb;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (tb && v)
		PyException_SetTraceback(v, tb);
	Py_XDECREF(t);
	Py_XDECREF(tb);
	return v;
#endif
}

/* Raise again what exc_take() took (steals @v; NULL raises nothing). */
static void exc_restore(PyObject *v)
{
	if (!v)
		return;
#if PY_VERSION_HEX >= 0x030C0000
	PyErr_SetRaisedException(v);
#else
	PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(v)), v, PyException_GetTraceback(v));
#endif
}

/* A frame for run() in tracebacks, as the Cython original shows. */
static void add_traceback(const char *func, int line)
{
#if PY_VERSION_HEX < 0x030D0000
	_PyTraceback_Add(func, "netfilterqueue.c", line);
#else
	(void)func;
	(void)line;
#endif
}

static PyObject *oserror(int err, const char *msg)
{
	PyObject *e = PyObject_CallFunction(PyExc_OSError, "is", err, msg);

	if (e) {
		PyErr_SetObject((PyObject *)Py_TYPE(e), e);
		Py_DECREF(e);
	}
	return NULL;
}

/* An unsigned integer argument no larger than @max (OverflowError otherwise). */
static int get_uint(PyObject *o, const char *name, unsigned long max, unsigned long *out)
{
	unsigned long v;

	if (!PyLong_Check(o) && !PyIndex_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.100s",
			     name, Py_TYPE(o)->tp_name);
		return -1;
	}
	o = PyNumber_Index(o);
	if (!o)
		return -1;
	v = PyLong_AsUnsignedLong(o);
	Py_DECREF(o);
	if (v == (unsigned long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		PyErr_Format(PyExc_OverflowError, "%s out of range 0-%lu", name, max);
		return -1;
	}
	if (v > max) {
		PyErr_Format(PyExc_OverflowError, "%s out of range 0-%lu", name, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Packet                                                             */
/* ------------------------------------------------------------------ */

static const char *const protocol_names[256] = {
	[0] = "HOPOPT", [1] = "ICMP", [2] = "IGMP", [3] = "GGP", [4] = "IP",
	[5] = "ST", [6] = "TCP", [7] = "CBT", [8] = "EGP", [9] = "IGP",
	[10] = "BBN-RCC-MON", [11] = "NVP-II", [12] = "PUP", [13] = "ARGUS",
	[14] = "EMCON", [15] = "XNET", [16] = "CHAOS", [17] = "UDP", [18] = "MUX",
	[19] = "DCN-MEAS", [20] = "HMP", [21] = "PRM", [22] = "XNS-IDP",
	[23] = "TRUNK-1", [24] = "TRUNK-2", [25] = "LEAF-1", [26] = "LEAF-2",
	[27] = "RDP", [28] = "IRTP", [29] = "ISO-TP4", [30] = "NETBLT",
	[31] = "MFE-NSP", [32] = "MERIT-INP", [33] = "DCCP", [34] = "3PC",
	[35] = "IDPR", [36] = "XTP", [37] = "DDP", [38] = "IDPR-CMTP",
	[39] = "TP++", [40] = "IL", [41] = "IPv6", [42] = "SDRP",
	[43] = "IPv6-Route", [44] = "IPv6-Frag", [45] = "IDRP", [46] = "RSVP",
	[47] = "GRE", [48] = "DSR", [49] = "BNA", [50] = "ESP", [51] = "AH",
	[52] = "I-NLSP", [53] = "SWIPE", [54] = "NARP", [55] = "MOBILE",
	[56] = "TLSP", [57] = "SKIP", [58] = "IPv6-ICMP", [59] = "IPv6-NoNxt",
	[60] = "IPv6-Opts", [61] = "any host internal protocol", [62] = "CFTP",
	[63] = "any local network", [64] = "SAT-EXPAK", [65] = "KRYPTOLAN",
	[66] = "RVD", [67] = "IPPC", [68] = "any distributed file system",
	[69] = "SAT-MON", [70] = "VISA", [71] = "IPCV", [72] = "CPNX",
	[73] = "CPHB", [74] = "WSN", [75] = "PVP", [76] = "BR-SAT-MON",
	[77] = "SUN-ND", [78] = "WB-MON", [79] = "WB-EXPAK", [80] = "ISO-IP",
	[81] = "VMTP", [82] = "SECURE-VMTP", [83] = "VINES", [84] = "TTP",
	[85] = "NSFNET-IGP", [86] = "DGP", [87] = "TCF", [88] = "EIGRP",
	[89] = "OSPFIGP", [90] = "Sprite-RPC", [91] = "LARP", [92] = "MTP",
	[93] = "AX.25", [94] = "IPIP", [95] = "MICP", [96] = "SCC-SP",
	[97] = "ETHERIP", [98] = "ENCAP", [99] = "any private encryption scheme",
	[100] = "GMTP", [101] = "IFMP", [102] = "PNNI", [103] = "PIM",
	[104] = "ARIS", [105] = "SCPS", [106] = "QNX", [107] = "A/N",
	[108] = "IPComp", [109] = "SNP", [110] = "Compaq-Peer",
	[111] = "IPX-in-IP", [112] = "VRRP", [113] = "PGM",
	[114] = "any 0-hop protocol", [115] = "L2TP", [116] = "DDX",
	[117] = "IATP", [118] = "STP", [119] = "SRP", [120] = "UTI",
	[121] = "SMP", [122] = "SM", [123] = "PTP", [124] = "ISIS",
	[125] = "FIRE", [126] = "CRTP", [127] = "CRUDP", [128] = "SSCOPMCE",
	[129] = "IPLT", [130] = "SPS", [131] = "PIPE", [132] = "SCTP",
	[133] = "FC", [134] = "RSVP-E2E-IGNORE", [135] = "Mobility",
	[136] = "UDPLite", [137] = "MPLS-in-IP", [138] = "manet", [139] = "HIP",
	[140] = "Shim6", [255] = "Reserved",
};

/*
 * The transport protocol of an IP packet: byte 9 of an IPv4 header; for
 * IPv6 the last next-header after the extension headers (the original
 * module read byte 9 of IPv6 packets too, which is part of the source
 * address). -1 when the bytes are no IP packet or too short.
 */
static int l4_protocol(const uint8_t *b, size_t len)
{
	struct ipv6ext x;

	if (len < 1)
		return -1;
	if (b[0] >> 4 == 4)
		return len >= 20 ? b[9] : -1;
	if (b[0] >> 4 != 6 || len < IPV6EXT_BASE_LEN)
		return -1;
	/* A chain cut short names its last next-header, as before. */
	ipv6ext_walk(b, len, 16, &x);
	return x.proto;
}

static bool packet_bound(const PacketObject *self)
{
	const NFQObject *nq = self->queue;

	return nq && nq->q && nq->num >= 0 && !nq->unbind_pending && nq->gen == self->gen;
}

/* The library packet whose bytes may be shown, or NULL. */
static struct nfqb_packet *packet_readable(const PacketObject *self)
{
	if (self->live || (self->payload_ok && self->owned))
		return self->p;
	return NULL;
}

static void packet_copy_meta(PacketObject *self, const struct nfqb_packet *p)
{
	size_t hwlen = 0;
	const uint8_t *hw = nfqb_packet_hw(p, &hwlen);
	size_t seclen = 0;
	const char *sec = nfqb_packet_secctx(p, &seclen);
	int len = nfqb_packet_payload_len(p);

	self->id = nfqb_packet_id(p);
	self->hw_protocol = nfqb_packet_hw_protocol(p);
	self->hook = nfqb_packet_hook(p);
	self->mark = nfqb_packet_mark(p);
	self->queue_num = nfqb_packet_queue(p);
	self->cap_len = nfqb_packet_cap_len(p);
	for (int i = 0; i < NDEV; i++)
		self->ifindex[i] = nfqb_packet_ifindex(p, (enum nfqb_dev)i);
	self->has_uid = nfqb_packet_uid(p, &self->uid) == 0;
	self->has_gid = nfqb_packet_gid(p, &self->gid) == 0;
	self->has_skbinfo = nfqb_packet_skbinfo(p, &self->skbinfo) == 0;
	self->has_ts = nfqb_packet_timestamp(p, &self->ts) == 0;
	if (hw) {
		self->hw_len = (uint8_t)(hwlen > sizeof(self->hw) ? sizeof(self->hw) : hwlen);
		memcpy(self->hw, hw, self->hw_len);
	}
	self->payload_len = len > 0 ? len : 0;
	if (sec)
		self->secctx = PyUnicode_DecodeUTF8(sec, (Py_ssize_t)seclen, "replace");
}

static PacketObject *packet_new(NFQObject *nq, struct nfqb_packet *p)
{
	PacketObject *self = (PacketObject *)PacketType.tp_alloc(&PacketType, 0);

	if (!self)
		return NULL;
	self->queue = (NFQObject *)Py_NewRef((PyObject *)nq);
	self->gen = nq->gen;
	self->p = p;
	self->live = true;
	packet_copy_meta(self, p);
	if (PyErr_Occurred()) {
		Py_DECREF(self);
		return NULL;
	}
	return self;
}

/*
 * The callback returned: the library's packet is about to be reused. A
 * Packet the user kept without a verdict gets a retained copy so that a
 * verdict stays possible (as the original allowed); its payload stays
 * hidden unless retain() was called, as in the original.
 */
static void packet_end_callback(PacketObject *self)
{
	struct nfqb_packet *p = self->p, *c;

	self->live = false;
	if (self->owned)
		return;
	self->p = NULL;
	if (!p || Py_REFCNT(self) <= 1 || nfqb_packet_decided(p))
		return;
	c = nfqb_packet_retain(p);
	if (c) {
		self->p = c;
		self->owned = true;
	}
}

static int packet_traverse(PacketObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->queue);
	return 0;
}

static int packet_clear(PacketObject *self)
{
	Py_CLEAR(self->queue);
	return 0;
}

static void packet_dealloc(PacketObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->owned)
		nfqb_packet_release(self->p);
	self->p = NULL;
	Py_CLEAR(self->queue);
	Py_CLEAR(self->given_payload);
	Py_CLEAR(self->owned_payload);
	Py_CLEAR(self->secctx);
	for (int i = 0; i < NDEV; i++)
		Py_CLEAR(self->names[i]);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *payload_error(const PacketObject *self)
{
	PyErr_SetString(PyExc_RuntimeError,
			self->payload_len == 0 ? MSG_NO_PAYLOAD : MSG_PAYLOAD_GONE);
	return NULL;
}

PyDoc_STRVAR(get_payload_doc,
"get_payload() -> bytes\n\n"
"The packet from its IP header on (what set_payload() gave, if called).\n"
"After the callback returned, only if retain() was called in it.");

static PyObject *packet_get_payload(PacketObject *self, PyObject *unused)
{
	struct nfqb_packet *p = packet_readable(self);
	const void *data;
	size_t len = 0;

	if (self->given_payload)
		return Py_NewRef(self->given_payload);
	if (self->owned_payload)
		return Py_NewRef(self->owned_payload);
	if (!p)
		return payload_error(self);
	data = nfqb_packet_payload(p, &len);
	if (!data) {
		PyErr_SetString(PyExc_RuntimeError, MSG_NO_PAYLOAD);
		return NULL;
	}
	return PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
}

static PyObject *packet_get_payload_len(PacketObject *self, PyObject *unused)
{
	return PyLong_FromSsize_t(self->payload_len);
}

static PyObject *packet_get_timestamp(PacketObject *self, PyObject *unused)
{
	if (!self->has_ts)
		return PyFloat_FromDouble(0.0);
	return PyFloat_FromDouble((double)self->ts.tv_sec +
				  (double)(self->ts.tv_nsec / 1000) / 1000000.0);
}

static PyObject *packet_get_hw(PacketObject *self, PyObject *unused)
{
	if (!self->hw_len)
		Py_RETURN_NONE;
	return PyBytes_FromStringAndSize((const char *)self->hw, self->hw_len);
}

static PyObject *packet_set_payload(PacketObject *self, PyObject *arg)
{
	PyObject *b;

	if (arg == Py_None) {
		Py_CLEAR(self->given_payload);
		Py_RETURN_NONE;
	}
	b = PyBytes_Check(arg) ? Py_NewRef(arg) : PyBytes_FromObject(arg);
	if (!b)
		return NULL;
	if (PyBytes_GET_SIZE(b) > (Py_ssize_t)NFQB_MAX_PAYLOAD) {
		PyErr_Format(PyExc_ValueError,
			     "payload of %zd bytes is larger than the %u bytes a packet can have",
			     PyBytes_GET_SIZE(b), NFQB_MAX_PAYLOAD);
		Py_DECREF(b);
		return NULL;
	}
	/* An empty payload means "unchanged", as in the original. */
	if (PyBytes_GET_SIZE(b) == 0)
		Py_CLEAR(b);
	Py_XSETREF(self->given_payload, b);
	Py_RETURN_NONE;
}

static PyObject *packet_set_mark(PacketObject *self, PyObject *arg)
{
	unsigned long v;

	if (get_uint(arg, "mark", UINT32_MAX, &v) < 0)
		return NULL;
	self->given_mark = (uint32_t)v;
	self->mark_set = true;
	Py_RETURN_NONE;
}

static PyObject *packet_get_mark(PacketObject *self, PyObject *unused)
{
	return PyLong_FromUnsignedLong(self->mark_set ? self->given_mark : self->mark);
}

/* Resolve and keep every interface name while the packet is still at hand. */
static int packet_cache_names(PacketObject *self);

PyDoc_STRVAR(retain_doc,
"retain()\n\n"
"Keep a copy of the packet so that get_payload() works after the callback\n"
"returned. Must be called within the callback.");

static PyObject *packet_retain(PacketObject *self, PyObject *unused)
{
	struct nfqb_packet *c;
	size_t len = 0;
	const void *data;

	if (self->payload_ok || self->owned_payload)
		Py_RETURN_NONE;
	if (!self->live) {
		if (self->given_payload) {
			self->owned_payload = Py_NewRef(self->given_payload);
			Py_RETURN_NONE;
		}
		return payload_error(self);
	}
	c = nfqb_packet_retain(self->p);
	if (c) {
		self->p = c;
		self->owned = true;
		self->payload_ok = true;
		Py_RETURN_NONE;
	}
	if (errno == ENOMEM)
		return PyErr_NoMemory();
	/* Decided already: the library keeps no copy, so keep what can be read. */
	if (packet_cache_names(self) < 0)
		return NULL;
	data = nfqb_packet_payload(self->p, &len);
	if (data) {
		self->owned_payload = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
		if (!self->owned_payload)
			return NULL;
	}
	self->payload_ok = true;
	Py_RETURN_NONE;
}

static PyObject *packet_verdict(PacketObject *self, uint32_t verdict)
{
	struct nfqb_packet *p = self->p;
	int err = 0;

	if (self->verdict_set) {
		PyErr_SetString(PyExc_RuntimeError, MSG_VERDICT_GIVEN);
		return NULL;
	}
	if (!packet_bound(self) || !p) {
		PyErr_SetString(PyExc_RuntimeError, MSG_UNBOUND);
		return NULL;
	}
	if (self->mark_set)
		err = nfqb_packet_set_mark(p, self->given_mark);
	if (err == 0 && self->given_payload)
		err = nfqb_packet_set_payload(p, PyBytes_AS_STRING(self->given_payload),
					      (size_t)PyBytes_GET_SIZE(self->given_payload));
	if (err == 0)
		err = nfqb_packet_verdict(p, verdict);
	switch (err) {
	case 0:
		break;
	case -EALREADY:
		self->verdict_set = true;
		PyErr_SetString(PyExc_RuntimeError, MSG_VERDICT_GIVEN);
		return NULL;
	case -ENOTCONN:
	case -ESTALE:
		PyErr_SetString(PyExc_RuntimeError, MSG_UNBOUND);
		return NULL;
	case -ENOMEM:
		return PyErr_NoMemory();
	default:
		return oserror(-err, "Failed to send verdict");
	}
	self->verdict_set = true;
	Py_RETURN_NONE;
}

static PyObject *packet_accept(PacketObject *self, PyObject *unused)
{
	return packet_verdict(self, NFQB_ACCEPT);
}

static PyObject *packet_drop(PacketObject *self, PyObject *unused)
{
	return packet_verdict(self, NFQB_DROP);
}

static PyObject *packet_repeat(PacketObject *self, PyObject *unused)
{
	return packet_verdict(self, NFQB_REPEAT);
}

PyDoc_STRVAR(requeue_doc,
"requeue(queue_num)\n\n"
"Hand the packet to another NFQUEUE queue number (verdict NF_QUEUE).");

static PyObject *packet_requeue(PacketObject *self, PyObject *arg)
{
	unsigned long num;

	if (get_uint(arg, "queue_num", 65535, &num) < 0)
		return NULL;
	return packet_verdict(self, NFQB_QUEUE | ((uint32_t)num << 16));
}

static PyObject *packet_str(PacketObject *self)
{
	struct nfqb_packet *p = packet_readable(self);
	const uint8_t *data = NULL;
	size_t len = 0;
	const char *name = NULL;
	int proto;

	if (p) {
		data = nfqb_packet_payload(p, &len);
	} else if (self->owned_payload) {
		data = (const uint8_t *)PyBytes_AS_STRING(self->owned_payload);
		len = (size_t)PyBytes_GET_SIZE(self->owned_payload);
	}
	if (!data)
		return PyUnicode_FromFormat("%zd byte packet, contents unretained",
					    self->payload_len);
	proto = l4_protocol(data, len);
	if (proto >= 0)
		name = protocol_names[proto];
	return PyUnicode_FromFormat("%s packet, %zd bytes",
				    name ? name : "Unknown protocol", self->payload_len);
}

static PyObject *optional_u32(bool has, uint32_t v)
{
	if (!has)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLong(v);
}

static PyObject *packet_uid(PacketObject *self, void *closure)
{
	return optional_u32(self->has_uid, self->uid);
}

static PyObject *packet_gid(PacketObject *self, void *closure)
{
	return optional_u32(self->has_gid, self->gid);
}

static PyObject *packet_skbinfo(PacketObject *self, void *closure)
{
	return optional_u32(self->has_skbinfo, self->skbinfo);
}

static PyObject *packet_secctx(PacketObject *self, void *closure)
{
	return Py_NewRef(self->secctx ? self->secctx : Py_None);
}

/* Name of interface @dev, None when the packet has none or it is gone. */
static PyObject *packet_resolve_name(PacketObject *self, int dev)
{
	char buf[IF_NAMESIZE + 1] = "";
	int err;

	if (self->names[dev])
		return Py_NewRef(self->names[dev]);
	if (!self->ifindex[dev]) {
		self->names[dev] = Py_NewRef(Py_None);
		return Py_NewRef(Py_None);
	}
	if (!self->p) {
		PyErr_SetString(PyExc_RuntimeError,
				"Interface names are no longer available. You must call "
				"retain() within the user_callback in order to read them "
				"after your callback has returned.");
		return NULL;
	}
	err = nfqb_packet_ifname(self->p, (enum nfqb_dev)dev, buf);
	if (err == -ENODEV || err == -ENODATA) {
		self->names[dev] = Py_NewRef(Py_None);
	} else if (err < 0) {
		return oserror(-err, "Failed to resolve the interface name");
	} else {
		self->names[dev] = PyUnicode_DecodeFSDefault(buf);
		if (!self->names[dev])
			return NULL;
	}
	return Py_NewRef(self->names[dev]);
}

static int packet_cache_names(PacketObject *self)
{
	for (int i = 0; i < NDEV; i++) {
		PyObject *n = packet_resolve_name(self, i);

		if (!n)
			return -1;
		Py_DECREF(n);
	}
	return 0;
}

static PyObject *packet_name(PacketObject *self, void *closure)
{
	return packet_resolve_name(self, (int)(intptr_t)closure);
}

static PyMethodDef packet_methods[] = {
	{ "get_payload", (PyCFunction)packet_get_payload, METH_NOARGS, get_payload_doc },
	{ "get_payload_len", (PyCFunction)packet_get_payload_len, METH_NOARGS,
	  "get_payload_len() -> int\n\nBytes of the packet copied to us." },
	{ "get_timestamp", (PyCFunction)packet_get_timestamp, METH_NOARGS,
	  "get_timestamp() -> float\n\nArrival time (Unix time), 0.0 when the kernel gave none." },
	{ "get_hw", (PyCFunction)packet_get_hw, METH_NOARGS,
	  "get_hw() -> bytes or None\n\nSource hardware address, None when not captured." },
	{ "set_payload", (PyCFunction)packet_set_payload, METH_O,
	  "set_payload(payload)\n\nSend these bytes instead of the packet with the verdict." },
	{ "set_mark", (PyCFunction)packet_set_mark, METH_O,
	  "set_mark(mark)\n\nGive the packet this 32-bit mark with the verdict." },
	{ "get_mark", (PyCFunction)packet_get_mark, METH_NOARGS,
	  "get_mark() -> int\n\nThe mark set with set_mark(), else the arrival mark." },
	{ "retain", (PyCFunction)packet_retain, METH_NOARGS, retain_doc },
	{ "accept", (PyCFunction)packet_accept, METH_NOARGS, "accept()\n\nAccept the packet." },
	{ "drop", (PyCFunction)packet_drop, METH_NOARGS, "drop()\n\nDrop the packet." },
	{ "repeat", (PyCFunction)packet_repeat, METH_NOARGS,
	  "repeat()\n\nRun the packet through its netfilter hook again." },
	{ "requeue", (PyCFunction)packet_requeue, METH_O, requeue_doc },
	{ NULL, NULL, 0, NULL },
};

#define PKT_MEMBER(name, type, field, doc) \
	{ name, type, offsetof(PacketObject, field), READONLY, doc }

static PyMemberDef packet_members[] = {
	PKT_MEMBER("id", T_UINT, id, "packet id assigned by the kernel"),
	PKT_MEMBER("hw_protocol", T_USHORT, hw_protocol, "link-layer protocol (0x0800 IPv4)"),
	PKT_MEMBER("hook", T_UBYTE, hook, "netfilter hook: 0 PREROUTING .. 4 POSTROUTING"),
	PKT_MEMBER("mark", T_UINT, mark, "mark the packet had when it was queued"),
	PKT_MEMBER("indev", T_UINT, ifindex[DEV_IN], "input interface index, 0 if none"),
	PKT_MEMBER("outdev", T_UINT, ifindex[DEV_OUT], "output interface index, 0 if none"),
	PKT_MEMBER("physindev", T_UINT, ifindex[DEV_PHYSIN], "bridge port in, 0 if none"),
	PKT_MEMBER("physoutdev", T_UINT, ifindex[DEV_PHYSOUT], "bridge port out, 0 if none"),
	PKT_MEMBER("cap_len", T_UINT, cap_len, "original packet length (may exceed get_payload_len())"),
	PKT_MEMBER("queue_num", T_USHORT, queue_num, "queue number the packet came from"),
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef packet_getset[] = {
	{ "uid", (getter)packet_uid, NULL, "socket owner uid (bind uid_gid=True), else None", NULL },
	{ "gid", (getter)packet_gid, NULL, "socket owner gid (bind uid_gid=True), else None", NULL },
	{ "skb_info", (getter)packet_skbinfo, NULL, "NFQA_SKB_* flags, None when absent", NULL },
	{ "secctx", (getter)packet_secctx, NULL, "security context (bind secctx=True), else None", NULL },
	{ "indev_name", (getter)packet_name, NULL, "input interface name, None if none",
	  (void *)(intptr_t)DEV_IN },
	{ "outdev_name", (getter)packet_name, NULL, "output interface name, None if none",
	  (void *)(intptr_t)DEV_OUT },
	{ "physindev_name", (getter)packet_name, NULL, "bridge port in, None if none",
	  (void *)(intptr_t)DEV_PHYSIN },
	{ "physoutdev_name", (getter)packet_name, NULL, "bridge port out, None if none",
	  (void *)(intptr_t)DEV_PHYSOUT },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject PacketType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "netfilterqueue.Packet",
	.tp_doc = PyDoc_STR("A packet received from NetfilterQueue."),
	.tp_basicsize = sizeof(PacketObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_dealloc = (destructor)packet_dealloc,
	.tp_traverse = (traverseproc)packet_traverse,
	.tp_clear = (inquiry)packet_clear,
	.tp_str = (reprfunc)packet_str,
	.tp_methods = packet_methods,
	.tp_members = packet_members,
	.tp_getset = packet_getset,
};

/* ------------------------------------------------------------------ */
/* NetfilterQueue                                                     */
/* ------------------------------------------------------------------ */

static void callback_failed(NFQObject *self)
{
	switch (self->mode) {
	case MODE_RUN:
		nfqb_queue_stop(self->q);
		/* fall through */
	case MODE_HANDLE:
		self->cb_failed = true;
		if (!self->exc)
			self->exc = exc_take();
		else
			PyErr_Clear();
		break;
	default:
		PyErr_WriteUnraisable(self->context == NULL ? Py_None :
				      strcmp(self->context, "bind") == 0 ? ctx_bind : ctx_unbind);
	}
}

/* libnfqb callback: one packet for the user's callback. */
static void on_packet(struct nfqb_packet *p, void *user)
{
	NFQObject *self = user;
	PacketObject *pkt;
	PyObject *cb, *r;

	/* Left undecided: the kernel drops it at unbind, or a later call sees it. */
	if (self->closing || !self->callback || self->cb_failed)
		return;
	pkt = packet_new(self, p);
	if (!pkt) {
		callback_failed(self);
		return;
	}
	cb = Py_NewRef(self->callback);
	r = PyObject_CallOneArg(cb, (PyObject *)pkt);
	Py_DECREF(cb);
	if (r)
		Py_DECREF(r);
	else
		callback_failed(self);
	packet_end_callback(pkt);
	Py_DECREF(pkt);
}

static void do_unbind(NFQObject *self)
{
	enum nfq_mode saved = self->mode;

	self->unbind_pending = false;
	if (self->num >= 0) {
		self->mode = MODE_CONFIG;
		self->context = "unbind";
		nfqb_queue_unbind(self->q, (uint16_t)self->num);
		self->mode = saved;
		self->context = NULL;
	}
	self->num = -1;
	self->gen++;
	Py_CLEAR(self->callback);
}

static PyObject *nfq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "af", "sockfd", "rtnl_sockfd", "netns", NULL };
	int af = 2, sockfd = -1, rtnlfd = -1, fd, fds[2] = { -1, -1 };
	const char *netns = NULL;
	NFQObject *self;
	int err;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$iiiz:NetfilterQueue", kwlist,
					 &af, &sockfd, &rtnlfd, &netns))
		return NULL;
	if (af < 0 || af > 65535) {
		PyErr_SetString(PyExc_OverflowError, "af out of range 0-65535");
		return NULL;
	}
	if (netns && sockfd >= 0) {
		PyErr_SetString(PyExc_ValueError, "give either sockfd or netns, not both");
		return NULL;
	}
	self = (NFQObject *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	self->num = -1;
	if (netns) {
		err = nfqb_agent_open_sockets(netns, true, fds);
		if (err < 0) {
			Py_DECREF(self);
			errno = -err;
			return PyErr_SetFromErrnoWithFilename(PyExc_OSError, netns);
		}
		self->q = nfqb_queue_open_fd(fds[0]);
		if (!self->q) {
			err = errno;
			if (fds[1] >= 0)
				close(fds[1]);
			Py_DECREF(self);
			return oserror(err, "Failed to open NFQueue.");
		}
		nfqb_queue_set_rtnl(self->q, fds[1]);
	} else if (sockfd >= 0) {
		/* A copy: like the original's dup2, the caller keeps its fd. */
		fd = fcntl(sockfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			err = errno;
			Py_DECREF(self);
			return oserror(err, "dup2 failed");
		}
		self->q = nfqb_queue_open_fd(fd);
	} else {
		self->q = nfqb_queue_open();
	}
	if (!self->q) {
		err = errno;
		Py_DECREF(self);
		return oserror(err, "Failed to open NFQueue.");
	}
	/* A callback that raises ends the run; records received with its
	 * packet would then wait for an fd that is no longer readable (a
	 * select() loop calling run(False)), so one record per receive. */
	nfqb_queue_set_rx_batch(self->q, 1);
	if (rtnlfd >= 0) {
		fd = fcntl(rtnlfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			err = errno;
			Py_DECREF(self);
			return oserror(err, "rtnl_sockfd: dup failed");
		}
		nfqb_queue_set_rtnl(self->q, fd);
	}
	return (PyObject *)self;
}

static void nfq_finalize(NFQObject *self)
{
	PyObject *saved;

	/* Unbinding can deliver packets to the callback: do it while the
	 * object is still whole, as the original's __del__ did. */
	saved = exc_take();
	if (self->q && self->num >= 0 && self->mode == MODE_IDLE)
		do_unbind(self);
	exc_restore(saved);
}

static int nfq_traverse(NFQObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->callback);
	Py_VISIT(self->exc);
	return 0;
}

static int nfq_clear(NFQObject *self)
{
	Py_CLEAR(self->callback);
	Py_CLEAR(self->exc);
	return 0;
}

static void nfq_dealloc(NFQObject *self)
{
	if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
		return;   /* resurrected */
	PyObject_GC_UnTrack(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	self->closing = true;
	nfqb_queue_close(self->q);
	self->q = NULL;
	Py_CLEAR(self->callback);
	Py_CLEAR(self->exc);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *busy_error(const char *what)
{
	PyErr_Format(PyExc_RuntimeError, "%s() cannot be called from within the user_callback", what);
	return NULL;
}

/* Queue flags from the extra keyword arguments. */
struct bind_flags {
	int fail_open, uid_gid, gso, secctx, conntrack;
};

static uint32_t flags_of(const struct bind_flags *f)
{
	return (f->fail_open ? NFQB_F_FAIL_OPEN : 0) | (f->uid_gid ? NFQB_F_UID_GID : 0) |
	       (f->gso ? NFQB_F_GSO : 0) | (f->secctx ? NFQB_F_SECCTX : 0) |
	       (f->conntrack ? NFQB_F_CONNTRACK : 0);
}

/*
 * Set the receive buffer to exactly @sock_len, as the original did (libnfqb
 * only ever grows it), and warn as the original did when the kernel
 * granted something else.
 */
static int set_rcvbuf(NFQObject *self, uint32_t sock_len)
{
	int fd = nfqb_queue_fd(self->q), v = (int)sock_len, got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0)
		return 0;
	if ((uint64_t)got == (uint64_t)sock_len * 2)
		return 0;
	return PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
				"Socket rcvbuf limit is now %d, requested %u.", got, sock_len);
}

static PyObject *bind_error(NFQObject *self, int err, unsigned long num)
{
	const char *why = nfqb_queue_errmsg(self->q);
	char msg[256], prefix[32];

	/* libnfqb names the queue too: say it once. */
	snprintf(prefix, sizeof(prefix), "queue %lu: ", num);
	if (strncmp(why, prefix, strlen(prefix)) == 0)
		why += strlen(prefix);

	if (err == -EINVAL) {
		PyErr_Format(PyExc_ValueError, "Failed to create queue %lu: %s", num,
			     *why ? why : "invalid argument");
		return NULL;
	}
	if (err == -EOPNOTSUPP && *why)
		snprintf(msg, sizeof(msg), "Failed to create queue %lu: %s.", num, why);
	else
		snprintf(msg, sizeof(msg), "Failed to create queue %lu.", num);
	return oserror(-err, msg);
}

PyDoc_STRVAR(bind_doc,
"bind(queue_num, user_callback, max_len=1024, mode=COPY_PACKET, range=65535,\n"
"     sock_len=4194304, *, fail_open=False, uid_gid=False, gso=True,\n"
"     secctx=False, conntrack=False)\n\n"
"Bind queue_num and send its packets to user_callback(packet).\n"
"fail_open: the kernel accepts packets instead of dropping them when the\n"
"queue is full; uid_gid/secctx/conntrack: ask for that metadata; gso: take\n"
"GSO packets whole instead of having the kernel segment them.");

static PyObject *nfq_bind(NFQObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "queue_num", "user_callback", "max_len", "mode", "range",
				  "sock_len", "fail_open", "uid_gid", "gso", "secctx",
				  "conntrack", NULL };
	PyObject *num_o, *cb, *max_len_o = NULL, *mode_o = NULL, *range_o = NULL, *sock_o = NULL;
	struct bind_flags f = { .gso = 1 };
	unsigned long num, max_len = 1024, mode = NFQB_COPY_PACKET, range = 65535;
	unsigned long sock_len = NFQB_DEFAULT_SOCK_LEN;
	struct nfqb_queue_opts opts = NFQB_QUEUE_OPTS_DEFAULT;
	int err;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OOOO$ppppp:bind", kwlist,
					 &num_o, &cb, &max_len_o, &mode_o, &range_o, &sock_o,
					 &f.fail_open, &f.uid_gid, &f.gso, &f.secctx,
					 &f.conntrack))
		return NULL;
	if (get_uint(num_o, "queue_num", 65535, &num) < 0 ||
	    (max_len_o && get_uint(max_len_o, "max_len", UINT32_MAX, &max_len) < 0) ||
	    (mode_o && get_uint(mode_o, "mode", 255, &mode) < 0) ||
	    (range_o && get_uint(range_o, "range", UINT32_MAX, &range) < 0) ||
	    (sock_o && get_uint(sock_o, "sock_len", UINT32_MAX, &sock_len) < 0))
		return NULL;
	if (!PyCallable_Check(cb)) {
		PyErr_SetString(PyExc_TypeError, "user_callback must be callable");
		return NULL;
	}
	if (self->mode != MODE_IDLE)
		return busy_error("bind");
	if (self->num >= 0) {
		PyErr_SetString(PyExc_RuntimeError, MSG_ALREADY_BOUND);
		return NULL;
	}
	if (mode > NFQB_COPY_PACKET) {
		PyErr_SetString(PyExc_ValueError,
				"mode must be COPY_NONE, COPY_META or COPY_PACKET");
		return NULL;
	}
	/* The kernel reads range 0 (or too large) as "the whole packet". */
	if (range == 0 || range > NFQB_MAX_PAYLOAD)
		range = NFQB_MAX_PAYLOAD;
	if (sock_len > NFQB_MAX_SOCK_LEN)
		sock_len = NFQB_MAX_SOCK_LEN;
	opts.max_len = (uint32_t)max_len;
	opts.mode = (enum nfqb_copy_mode)mode;
	opts.range = (uint32_t)range;
	opts.sock_len = (uint32_t)sock_len;
	opts.flags = flags_of(&f);

	self->mode = MODE_CONFIG;
	self->context = "bind";
	err = nfqb_queue_bind(self->q, (uint16_t)num, on_packet, self, &opts);
	self->mode = MODE_IDLE;
	self->context = NULL;
	if (err < 0)
		return bind_error(self, err, num);
	self->num = (int)num;
	self->callback = Py_NewRef(cb);
	if (set_rcvbuf(self, (uint32_t)sock_len) < 0) {
		do_unbind(self);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *nfq_unbind(NFQObject *self, PyObject *unused)
{
	if (self->mode == MODE_CONFIG)
		Py_RETURN_NONE;   /* unbinding already */
	if (self->mode != MODE_IDLE) {
		/* From the callback: libnfqb cannot wait for the kernel's answer
		 * while dispatching, so finish when the dispatch returns. */
		if (self->num >= 0 && !self->unbind_pending) {
			self->unbind_pending = true;
			nfqb_queue_stop(self->q);
		}
		Py_RETURN_NONE;
	}
	do_unbind(self);
	Py_RETURN_NONE;
}

static PyObject *nfq_get_fd(NFQObject *self, PyObject *unused)
{
	return PyLong_FromLong(nfqb_queue_fd(self->q));
}

/* After a dispatch: finish a deferred unbind, raise what the callback raised. */
static int after_dispatch(NFQObject *self)
{
	PyObject *exc = self->exc;

	self->cb_failed = false;
	if (self->unbind_pending)
		do_unbind(self);
	if (!exc)
		return 0;
	self->exc = NULL;
	exc_restore(exc);
	return -1;
}

static int wait_readable(NFQObject *self)
{
	struct pollfd pfd = { .fd = nfqb_queue_fd(self->q), .events = POLLIN };
	int n, err;

	Py_BEGIN_ALLOW_THREADS
	n = poll(&pfd, 1, -1);
	err = errno;
	Py_END_ALLOW_THREADS
	if (n >= 0)
		return 0;
	if (err == EINTR)
		return PyErr_CheckSignals();
	errno = err;
	PyErr_SetFromErrno(PyExc_OSError);
	return -1;
}

PyDoc_STRVAR(run_doc,
"run(block=True)\n\n"
"Send packets to the callback. Blocking: until an exception is raised\n"
"(by the callback or a signal handler, e.g. Ctrl+C). block=False: handle\n"
"what is pending and return (use with get_fd() in an event loop).");

static PyObject *nfq_run(NFQObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "block", NULL };
	int block = 1, n;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:run", kwlist, &block))
		return NULL;
	if (self->mode != MODE_IDLE)
		return busy_error("run");
	self->cb_failed = false;
	for (;;) {
		self->mode = MODE_RUN;
		n = nfqb_queue_run(self->q, false);
		self->mode = MODE_IDLE;
		if (after_dispatch(self) < 0)
			goto fail;
		if (n < 0 && n != -EINTR) {
			oserror(-n, "recv failed");
			goto fail;
		}
		if (!block)
			break;
		if (PyErr_CheckSignals() < 0 || wait_readable(self) < 0)
			goto fail;
	}
	Py_RETURN_NONE;
fail:
	add_traceback("NetfilterQueue.run", __LINE__);
	return NULL;
}

/* errno of the OSError being raised, or 0 when it is something else. */
static int pending_oserror_errno(void)
{
	PyObject *v, *e;
	int err = 0;

	if (!PyErr_ExceptionMatches(PyExc_OSError))
		return 0;
	v = exc_take();
	e = v ? PyObject_GetAttrString(v, "errno") : NULL;
	if (e && PyLong_Check(e))
		err = (int)PyLong_AsLong(e);
	Py_XDECREF(e);
	PyErr_Clear();
	exc_restore(v);
	return err;
}

PyDoc_STRVAR(run_socket_doc,
"run_socket(s)\n\n"
"Like run(), but read with s.recv() (a socket object on get_fd(), e.g. from\n"
"socket.fromfd()) so that gevent and friends can patch it. A non-blocking\n"
"socket returns when nothing more is pending.");

static PyObject *nfq_run_socket(NFQObject *self, PyObject *s)
{
	PyObject *buf;
	Py_buffer view;
	int n, err;

	if (self->mode != MODE_IDLE)
		return busy_error("run_socket");
	self->cb_failed = false;
	for (;;) {
		buf = PyObject_CallMethod(s, "recv", "n", (Py_ssize_t)RECV_SIZE);
		if (!buf) {
			err = pending_oserror_errno();
			if (err == ENOBUFS) {
				PyErr_Clear();
				continue;
			}
			if (err == EAGAIN || err == EWOULDBLOCK) {
				PyErr_Clear();
				break;
			}
			return NULL;
		}
		if (PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) < 0) {
			Py_DECREF(buf);
			return NULL;
		}
		if (view.len == 0) {   /* end of stream: nothing more will come */
			PyBuffer_Release(&view);
			Py_DECREF(buf);
			break;
		}
		self->mode = MODE_HANDLE;
		n = nfqb_queue_handle(self->q, view.buf, (size_t)view.len);
		self->mode = MODE_IDLE;
		PyBuffer_Release(&view);
		Py_DECREF(buf);
		if (after_dispatch(self) < 0)
			return NULL;
		if (n < 0)
			return oserror(-n, "Failed to handle netlink messages");
	}
	Py_RETURN_NONE;
}

static PyObject *stat_dict(const struct nfqb_queue_stats *st)
{
	return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsK}",
			     "packets", (unsigned long long)st->packets,
			     "bytes", (unsigned long long)st->bytes,
			     "verdicts", (unsigned long long)st->verdicts,
			     "batches", (unsigned long long)st->batches,
			     "batched", (unsigned long long)st->batched,
			     "enobufs", (unsigned long long)st->enobufs,
			     "malformed", (unsigned long long)st->malformed,
			     "kernel_errors", (unsigned long long)st->kernel_errors,
			     "unsettled", (unsigned long long)st->unsettled,
			     "send_errors", (unsigned long long)st->send_errors);
}

static PyObject *nfq_get_stats(NFQObject *self, PyObject *unused)
{
	struct nfqb_queue_stats st;

	nfqb_queue_get_stats(self->q, &st);
	return stat_dict(&st);
}

static PyObject *nfq_queue_num(NFQObject *self, void *closure)
{
	if (self->num < 0 || self->unbind_pending)
		Py_RETURN_NONE;
	return PyLong_FromLong(self->num);
}

static PyMethodDef nfq_methods[] = {
	{ "bind", (PyCFunction)(void (*)(void))nfq_bind, METH_VARARGS | METH_KEYWORDS, bind_doc },
	{ "unbind", (PyCFunction)nfq_unbind, METH_NOARGS,
	  "unbind()\n\nUnbind the queue; its waiting packets are dropped by the kernel." },
	{ "get_fd", (PyCFunction)nfq_get_fd, METH_NOARGS,
	  "get_fd() -> int\n\nThe netlink socket, to poll for readability." },
	{ "run", (PyCFunction)(void (*)(void))nfq_run, METH_VARARGS | METH_KEYWORDS, run_doc },
	{ "run_socket", (PyCFunction)nfq_run_socket, METH_O, run_socket_doc },
	{ "get_stats", (PyCFunction)nfq_get_stats, METH_NOARGS,
	  "get_stats() -> dict\n\nlibnfqb's counters for this queue object." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef nfq_getset[] = {
	{ "queue_num", (getter)nfq_queue_num, NULL, "the bound queue number, None when unbound", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyDoc_STRVAR(nfq_doc,
"NetfilterQueue(*, af=AF_INET, sockfd=-1, rtnl_sockfd=-1, netns=None)\n\n"
"Handle a single numbered queue. sockfd: a NETLINK_NETFILTER socket opened\n"
"elsewhere (e.g. in another network namespace, received from an agent); it\n"
"is copied, the caller keeps its own. rtnl_sockfd: a NETLINK_ROUTE socket of\n"
"the same namespace, to resolve interface names there. netns: a namespace\n"
"path (/run/netns/NAME) to open both sockets in.");

static PyTypeObject NFQType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "netfilterqueue.NetfilterQueue",
	.tp_doc = nfq_doc,
	.tp_basicsize = sizeof(NFQObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = nfq_new,
	.tp_dealloc = (destructor)nfq_dealloc,
	.tp_finalize = (destructor)nfq_finalize,
	.tp_traverse = (traverseproc)nfq_traverse,
	.tp_clear = (inquiry)nfq_clear,
	.tp_weaklistoffset = offsetof(NFQObject, weakrefs),
	.tp_methods = nfq_methods,
	.tp_getset = nfq_getset,
};

/* ------------------------------------------------------------------ */
/* Module                                                             */
/* ------------------------------------------------------------------ */

static int add_protocols(PyObject *m)
{
	PyObject *d = PyDict_New(), *k, *v;

	if (!d)
		return -1;
	for (int i = 0; i < 256; i++) {
		if (!protocol_names[i])
			continue;
		k = PyLong_FromLong(i);
		v = PyUnicode_FromString(protocol_names[i]);
		if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
			Py_XDECREF(k);
			Py_XDECREF(v);
			Py_DECREF(d);
			return -1;
		}
		Py_DECREF(k);
		Py_DECREF(v);
	}
	if (PyModule_AddObject(m, "PROTOCOLS", d) < 0) {
		Py_DECREF(d);
		return -1;
	}
	return 0;
}

static int add_type(PyObject *m, const char *name, PyTypeObject *t)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

static int module_exec(PyObject *m)
{
	PyObject *version;

	ctx_unbind = PyUnicode_InternFromString("netfilterqueue callback during unbind");
	ctx_bind = PyUnicode_InternFromString("netfilterqueue callback during bind");
	if (!ctx_unbind || !ctx_bind)
		return -1;
	if (add_type(m, "NetfilterQueue", &NFQType) < 0 ||
	    add_type(m, "Packet", &PacketType) < 0 ||
	    PyModule_AddIntConstant(m, "COPY_NONE", NFQB_COPY_NONE) < 0 ||
	    PyModule_AddIntConstant(m, "COPY_META", NFQB_COPY_META) < 0 ||
	    PyModule_AddIntConstant(m, "COPY_PACKET", NFQB_COPY_PACKET) < 0 ||
	    PyModule_AddStringConstant(m, "__version__", MODULE_VERSION) < 0 ||
	    PyModule_AddStringConstant(m, "LIBNFQB_VERSION", NFQB_VERSION) < 0 ||
	    add_protocols(m) < 0)
		return -1;
	version = Py_BuildValue("(iii)", 1, 1, 0);
	if (!version || PyModule_AddObject(m, "VERSION", version) < 0) {
		Py_XDECREF(version);
		return -1;
	}
	return 0;
}

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT,
	.m_name = "netfilterqueue",
	.m_doc = PyDoc_STR("Bind to a Linux netfilter queue (NFQUEUE) and give verdicts "
			   "on its packets; python-netfilterqueue's API on libnfqb."),
	.m_size = -1,
};

PyMODINIT_FUNC PyInit_netfilterqueue(void);

/** PyInit_netfilterqueue - module entry point called by the import system. */
PyMODINIT_FUNC PyInit_netfilterqueue(void)
{
	PyObject *m = PyModule_Create(&moduledef);

	if (m && module_exec(m) < 0)
		Py_CLEAR(m);
	return m;
}
