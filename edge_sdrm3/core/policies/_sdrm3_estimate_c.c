/* SDRM3's schedule estimate (sdrm3_estimate._first_late) on C arrays.
 *
 * The same rule, step for step, as the pure-Python function in sdrm3_estimate.py, whose docstring states it: the
 * items (it[0] the deadline, it[3] the weight, it[6] the ready time, it[7] the block latencies [accelerator][block])
 * run block by block from the accelerator free times ``start``. Every comparison and every sum is the one Python
 * makes (tuple order of the keys, bisect_right, heapq's sift order, sum()'s rounding), so both give the same answer
 * on any input; a test runs both on random queues and on whole replays.
 *
 * An input that is not plain (a latency or a weight that is not a float, rows of unequal length, a sequence that is
 * not a list or tuple, an accelerator out of range) goes to the pure-Python function (``fallback``, set by
 * sdrm3_estimate.py), which also raises the errors Python would; ``fallbacks()`` counts those calls, ``calls()`` all.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static PyObject *fallback_fn = NULL;
static unsigned long long n_fallbacks = 0, n_calls = 0;

#define NOT_PLAIN 1
#define NO_MEMORY 2

/* A number as Python compares and adds it: a float, or an int small enough to be exact as a double. */
static int plain_number(PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    if (PyLong_CheckExact(o)) {
        double v = PyLong_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NOT_PLAIN;
        }
        if (fabs(v) > 9007199254740992.0)
            return NOT_PLAIN;
        *out = v;
        return 0;
    }
    return NOT_PLAIN;
}

/* sum() of floats, with its rounding: plain addition before Python 3.12, Neumaier's compensated sum from it. */
typedef struct {
    double sum, c;
} PySum;

static inline void pysum_add(PySum *s, double x)
{
#if PY_VERSION_HEX >= 0x030C0000
    double t = s->sum + x;
    if (fabs(s->sum) >= fabs(x))
        s->c += (s->sum - t) + x;
    else
        s->c += (x - t) + s->sum;
    s->sum = t;
#else
    s->sum += x;
#endif
}

static inline double pysum_done(const PySum *s)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (s->c != 0.0 && isfinite(s->c))
        return s->sum + s->c;
#endif
    return s->sum;
}

/* One latency table, converted once per call however many items share it. */
typedef struct {
    PyObject *obj;
    Py_ssize_t rows, nb;
    size_t lat, suf; /* offsets in the arena: lat[c * nb + b], suf[b] (nb + 1 of them) */
} Table;

typedef struct {
    double *d;
    size_t n, cap;
} Arena;

static int arena_take(Arena *a, size_t n, size_t *at)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->n + n)
            cap *= 2;
        double *d = realloc(a->d, cap * sizeof(double));
        if (d == NULL)
            return NO_MEMORY;
        a->d = d;
        a->cap = cap;
    }
    *at = a->n;
    a->n += n;
    return 0;
}

/* The rows of ``lat`` and their best-case suffixes (_best_suffixes: per block the least over the rows). */
static int convert_table(PyObject *lat, Table *tb, Arena *ar)
{
    if (!PyList_Check(lat) && !PyTuple_Check(lat))
        return NOT_PLAIN;
    Py_ssize_t rows = PySequence_Fast_GET_SIZE(lat);
    if (rows == 0)
        return NOT_PLAIN;
    PyObject **row = PySequence_Fast_ITEMS(lat);
    if (!PyList_Check(row[0]) && !PyTuple_Check(row[0]))
        return NOT_PLAIN;
    Py_ssize_t nb = PySequence_Fast_GET_SIZE(row[0]);
    tb->obj = lat;
    tb->rows = rows;
    tb->nb = nb;
    int err = arena_take(ar, (size_t)(rows * nb), &tb->lat);
    if (!err)
        err = arena_take(ar, (size_t)(nb + 1), &tb->suf);
    if (err)
        return err;
    double *d = ar->d + tb->lat;
    for (Py_ssize_t c = 0; c < rows; c++) {
        PyObject *r = row[c];
        if ((!PyList_Check(r) && !PyTuple_Check(r)) || PySequence_Fast_GET_SIZE(r) != nb)
            return NOT_PLAIN;
        PyObject **v = PySequence_Fast_ITEMS(r);
        for (Py_ssize_t b = 0; b < nb; b++) {
            if (!PyFloat_CheckExact(v[b]))
                return NOT_PLAIN;
            d[c * nb + b] = PyFloat_AS_DOUBLE(v[b]);
        }
    }
    double *suf = ar->d + tb->suf;
    suf[nb] = 0.0;
    for (Py_ssize_t b = nb - 1; b >= 0; b--) {
        double best = d[b];
        for (Py_ssize_t c = 1; c < rows; c++)
            if (d[c * nb + b] < best)
                best = d[c * nb + b];
        suf[b] = suf[b + 1] + best;
    }
    return 0;
}

/* The estimate's state: per item its columns, the keys of its place in the order, the two sets. */
typedef struct {
    Py_ssize_t n, n_t, n_a;
    int lst, fit, count, weighted;
    double stop;
    double *t, *dl, *w, *key0, *key1, *key2, *lat_of_k, *pr;
    double **lat, **suf;
    Py_ssize_t *nb, *nxt, *rows, *accs, *avail, *cand, *gone, *pk;
    Py_ssize_t n_avail, n_pend;
} State;

/* The order of the ready items: the tuple (latest start, next block, remaining work, index) or (deadline, index),
 * compared as Python compares tuples (the first position whose values are not equal decides, by <). */
static inline int key_lt(const State *s, Py_ssize_t i, Py_ssize_t j)
{
    if (!(s->key0[i] == s->key0[j]))
        return s->key0[i] < s->key0[j];
    if (s->lst) {
        if (!(s->key1[i] == s->key1[j]))
            return s->key1[i] < s->key1[j];
        if (!(s->key2[i] == s->key2[j]))
            return s->key2[i] < s->key2[j];
    }
    return i < j;
}

static inline void set_key(State *s, Py_ssize_t k)
{
    if (s->lst) {
        const double *r = s->suf[k] + s->nxt[k];
        s->key0[k] = s->dl[k] - r[0];
        s->key1[k] = r[0] - r[1];
        s->key2[k] = r[0];
    } else {
        s->key0[k] = s->dl[k];
    }
}

/* The heap of (ready time, index), with heapq's sift order (the weights are summed in the heap's order). */
static inline int pend_lt(const State *s, Py_ssize_t i, Py_ssize_t j)
{
    if (!(s->pr[i] == s->pr[j]))
        return s->pr[i] < s->pr[j];
    return s->pk[i] < s->pk[j];
}

static inline void pend_swap(State *s, Py_ssize_t i, Py_ssize_t j)
{
    double r = s->pr[i];
    Py_ssize_t k = s->pk[i];
    s->pr[i] = s->pr[j];
    s->pk[i] = s->pk[j];
    s->pr[j] = r;
    s->pk[j] = k;
}

static void sift_down(State *s, Py_ssize_t start, Py_ssize_t pos)
{
    while (pos > start) {
        Py_ssize_t parent = (pos - 1) >> 1;
        if (!pend_lt(s, pos, parent))
            break;
        pend_swap(s, parent, pos);
        pos = parent;
    }
}

static void sift_up(State *s, Py_ssize_t pos)
{
    Py_ssize_t end = s->n_pend, start = pos, limit = end >> 1;
    while (pos < limit) {
        Py_ssize_t child = 2 * pos + 1;
        if (child + 1 < end && !pend_lt(s, child, child + 1))
            child += 1;
        pend_swap(s, child, pos);
        pos = child;
    }
    sift_down(s, start, pos);
}

static void heap_push(State *s, double r, Py_ssize_t k)
{
    s->pr[s->n_pend] = r;
    s->pk[s->n_pend] = k;
    s->n_pend++;
    sift_down(s, 0, s->n_pend - 1);
}

static Py_ssize_t heap_pop(State *s)
{
    Py_ssize_t top = s->pk[0];
    s->n_pend--;
    if (s->n_pend > 0) {
        s->pr[0] = s->pr[s->n_pend];
        s->pk[0] = s->pk[s->n_pend];
        sift_up(s, 0);
    }
    return top;
}

/* bisect.insort (bisect_right) into the ready items, and list.remove of one. */
static void avail_insert(State *s, Py_ssize_t k)
{
    Py_ssize_t lo = 0, hi = s->n_avail;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (key_lt(s, k, s->avail[mid]))
            hi = mid;
        else
            lo = mid + 1;
    }
    memmove(s->avail + lo + 1, s->avail + lo, (size_t)(s->n_avail - lo) * sizeof(Py_ssize_t));
    s->avail[lo] = k;
    s->n_avail++;
}

static void avail_remove(State *s, Py_ssize_t k)
{
    for (Py_ssize_t i = 0; i < s->n_avail; i++)
        if (s->avail[i] == k) {
            memmove(s->avail + i, s->avail + i + 1, (size_t)(s->n_avail - i - 1) * sizeof(Py_ssize_t));
            s->n_avail--;
            return;
        }
}

/* The result: an index (-1: none late), or the count (an int, a float once a float weight was added). */
typedef struct {
    double late;
    int late_float;
} Late;

static PyObject *late_value(const Late *l)
{
    if (l->late_float)
        return PyFloat_FromDouble(l->late);
    return PyLong_FromDouble(l->late);
}

/* An item ends late (or runs nowhere): 1 when the estimate is settled (``*out`` then holds the answer). */
static int count_late(State *s, Late *l, double *could, Py_ssize_t k, int nowhere, PyObject **out)
{
    if (!s->count) {
        *out = PyLong_FromSsize_t(k);
        return 1;
    }
    double w = s->weighted ? s->w[k] : 1.0;
    if (s->weighted)
        l->late_float = 1;
    l->late += w;
    *could -= w;
    if (s->stop <= l->late + 1e-9 || (nowhere && l->late + *could < s->stop)) {
        *out = late_value(l);
        return 1;
    }
    return 0;
}

/* The first ready item, in the order corrected lazily for blocks that cannot be interrupted, whose next block can
 * start now (``*best``, ``*fin``: where and when it ends), or -1; the items that run nowhere go to ``gone``. */
static Py_ssize_t next_placed(State *s, Py_ssize_t a, double now, Py_ssize_t *n_gone, Py_ssize_t *best_out,
                              double *fin_out)
{
    Py_ssize_t *cand = s->cand, n_c = s->n_avail;
    memcpy(cand, s->avail, (size_t)n_c * sizeof(Py_ssize_t));
    double *t = s->t;
    for (Py_ssize_t p = 0; p < n_c;) {
        Py_ssize_t kk = cand[p];
        if (s->lst && p + 1 < n_c && s->key0[cand[p + 1]] - now < s->key1[kk]) {
            double slack_j = s->key0[kk] - now, block = s->key1[kk];
            for (Py_ssize_t q = p + 1; q < n_c; q++) {
                double slack_k = s->key0[cand[q]] - now;
                if (slack_k >= block)
                    break;
                if (0 <= slack_k && s->key2[cand[q]] <= slack_j) {
                    kk = cand[q];
                    memmove(cand + p + 1, cand + p, (size_t)(q - p) * sizeof(Py_ssize_t));
                    cand[p] = kk;
                    break;
                }
            }
        }
        p++;
        Py_ssize_t k = kk, b = s->nxt[k], nb = s->nb[k];
        const double *lat = s->lat[k];
        Py_ssize_t best = -1;
        double fin = Py_HUGE_VAL;
        for (Py_ssize_t i = 0; i < s->n_a; i++) {
            Py_ssize_t c = s->accs[i];
            double f = t[c] + lat[c * nb + b];
            if (f < fin || (f == fin && c == a)) {
                best = c;
                fin = f;
            }
        }
        if (s->fit && best >= 0 && t[best] > now) {
            for (Py_ssize_t i = 0; i < s->n_a; i++) {
                Py_ssize_t c = s->accs[i];
                if (!(t[c] <= now))
                    continue;
                PySum rest = {0.0, 0.0};
                for (Py_ssize_t x = b; x < nb; x++)
                    pysum_add(&rest, lat[c * nb + x]);
                if (now + pysum_done(&rest) <= s->dl[k]) {
                    best = c;
                    fin = now + lat[c * nb + b];
                    break;
                }
            }
        }
        if (best < 0) {
            avail_remove(s, kk);
            s->gone[(*n_gone)++] = kk;
            continue;
        }
        if (t[best] > now)
            continue;
        *best_out = best;
        *fin_out = fin;
        return kk;
    }
    return -1;
}

/* The estimate over the converted state (_first_late's loop). */
static PyObject *run_estimate(State *s)
{
    double *t = s->t;
    Late l = {0.0, 0};
    for (Py_ssize_t k = 0; k < s->n; k++)
        if (s->nb[k] > 0) {
            set_key(s, k);
            s->pr[s->n_pend] = s->pr[k]; /* (pr holds the ready times on entry, in place: n_pend <= k) */
            s->pk[s->n_pend++] = k;
        }
    for (Py_ssize_t i = (s->n_pend >> 1) - 1; i >= 0; i--)
        sift_up(s, i);
    Py_ssize_t n_left = s->n_pend;
    double could = Py_HUGE_VAL;
    if (s->stop < Py_HUGE_VAL) {
        if (s->weighted) {
            PySum sum = {0.0, 0.0};
            for (Py_ssize_t i = 0; i < s->n_pend; i++)
                pysum_add(&sum, s->w[s->pk[i]]);
            could = pysum_done(&sum) + 1e-6;
        } else {
            could = (double)n_left + 1e-6;
        }
    }
    PyObject *out = NULL;
    while (n_left) {
        Py_ssize_t a = s->accs[0];
        double now = t[a];
        for (Py_ssize_t i = 1; i < s->n_a; i++)
            if (t[s->accs[i]] < now) {
                a = s->accs[i];
                now = t[a];
            }
        while (s->n_pend && s->pr[0] <= now)
            avail_insert(s, heap_pop(s));
        if (s->n_avail == 0) {
            if (!s->n_pend)
                break;
            double ready = s->pr[0];
            for (Py_ssize_t i = 0; i < s->n_a; i++)
                if (t[s->accs[i]] < ready)
                    t[s->accs[i]] = ready;
            continue;
        }
        Py_ssize_t n_gone = 0, best = -1;
        double fin = 0.0;
        Py_ssize_t k = next_placed(s, a, now, &n_gone, &best, &fin);
        for (Py_ssize_t g = 0; g < n_gone; g++) {
            n_left--;
            if (count_late(s, &l, &could, s->gone[g], 1, &out))
                return out;
        }
        if (k < 0) { /* the accelerator idles until the next change */
            int any = s->n_pend > 0;
            double nt = any ? s->pr[0] : 0.0;
            for (Py_ssize_t i = 0; i < s->n_a; i++) {
                double tc = t[s->accs[i]];
                if (tc > now && (!any || tc < nt)) {
                    nt = tc;
                    any = 1;
                }
            }
            if (!any)
                break;
            t[a] = nt;
            continue;
        }
        t[best] = fin;
        avail_remove(s, k);
        Py_ssize_t b = ++s->nxt[k];
        if (b < s->nb[k]) {
            set_key(s, k);
            heap_push(s, fin, k);
            continue;
        }
        n_left--;
        if (fin > s->dl[k]) {
            if (count_late(s, &l, &could, k, 0, &out))
                return out;
        } else {
            could -= s->weighted ? s->w[k] : 1.0;
            if (l.late + could < s->stop)
                return late_value(&l);
        }
    }
    return s->count ? late_value(&l) : PyLong_FromLong(-1);
}

/* The items, free times and accelerators into ``s`` (arrays in one block, tables in the arena). */
static int convert(State *s, PyObject *items, PyObject *start, PyObject *accs, Arena *ar, Table **tables_out,
                   void **block_out)
{
    if (!PyList_Check(items) && !PyTuple_Check(items))
        return NOT_PLAIN;
    if ((!PyList_Check(start) && !PyTuple_Check(start)) || (!PyList_Check(accs) && !PyTuple_Check(accs)))
        return NOT_PLAIN;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items), n_t = PySequence_Fast_GET_SIZE(start);
    Py_ssize_t n_a = PySequence_Fast_GET_SIZE(accs);
    if (n > 2500 || n_a == 0) /* (heapq sifts larger heaps in another order; no accelerator: Python's error) */
        return NOT_PLAIN;
    size_t nd = (size_t)(n_t + 8 * n + 1), ni = (size_t)(n_a + 8 * n + 1);
    char *block = malloc(nd * sizeof(double) + (size_t)(2 * n + 1) * sizeof(double *) + ni * sizeof(Py_ssize_t));
    Table *tables = malloc((size_t)(n + 1) * sizeof(Table));
    *block_out = block;
    *tables_out = tables;
    if (block == NULL || tables == NULL)
        return NO_MEMORY;
    double *d = (double *)block;
    s->t = d;
    s->dl = d + n_t;
    s->w = s->dl + n;
    s->key0 = s->w + n;
    s->key1 = s->key0 + n;
    s->key2 = s->key1 + n;
    s->pr = s->key2 + n;
    double **pp = (double **)(d + nd);
    s->lat = pp;
    s->suf = pp + n;
    Py_ssize_t *ip = (Py_ssize_t *)(pp + 2 * n + 1);
    s->accs = ip;
    s->nb = ip + n_a;
    s->nxt = s->nb + n;
    s->rows = s->nxt + n;
    s->avail = s->rows + n;
    s->cand = s->avail + n;
    s->gone = s->cand + n;
    s->pk = s->gone + n;
    s->n = n;
    s->n_t = n_t;
    s->n_a = n_a;
    s->n_avail = s->n_pend = 0;
    PyObject **v = PySequence_Fast_ITEMS(start);
    for (Py_ssize_t c = 0; c < n_t; c++)
        if (plain_number(v[c], &s->t[c]))
            return NOT_PLAIN;
    v = PySequence_Fast_ITEMS(accs);
    for (Py_ssize_t i = 0; i < n_a; i++) {
        if (!PyLong_CheckExact(v[i]))
            return NOT_PLAIN;
        Py_ssize_t c = PyLong_AsSsize_t(v[i]);
        if (c < 0 || c >= n_t) {
            PyErr_Clear();
            return NOT_PLAIN;
        }
        s->accs[i] = c;
    }
    Py_ssize_t n_tables = 0, *table_of = s->rows; /* (the table of each item; the arena may move meanwhile) */
    PyObject **it = PySequence_Fast_ITEMS(items);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = it[k];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 8)
            return NOT_PLAIN;
        if (plain_number(PyTuple_GET_ITEM(item, 0), &s->dl[k]) || plain_number(PyTuple_GET_ITEM(item, 6), &s->pr[k]))
            return NOT_PLAIN;
        PyObject *w = PyTuple_GET_ITEM(item, 3);
        if (s->weighted) {
            if (!PyFloat_CheckExact(w))
                return NOT_PLAIN;
            s->w[k] = PyFloat_AS_DOUBLE(w);
        }
        PyObject *lat = PyTuple_GET_ITEM(item, 7);
        Py_ssize_t j = n_tables - 1;
        while (j >= 0 && tables[j].obj != lat)
            j--;
        if (j < 0) {
            int err = convert_table(lat, &tables[n_tables], ar);
            if (err)
                return err;
            j = n_tables++;
        }
        table_of[k] = j;
        s->nb[k] = tables[j].nb;
        s->nxt[k] = 0;
        for (Py_ssize_t i = 0; tables[j].nb > 0 && i < n_a; i++)
            if (s->accs[i] >= tables[j].rows)
                return NOT_PLAIN;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        Table *tb = &tables[table_of[k]];
        s->lat[k] = ar->d + tb->lat;
        s->suf[k] = ar->d + tb->suf;
    }
    return 0;
}

static const char *const kw_names[] = {"items", "start", "accs", "count", "weighted", "lst", "stop", "fit", "memo"};
#define N_ARGS 9

static PyObject *call_fallback(PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (fallback_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the estimate's pure-Python fallback is not set");
        return NULL;
    }
    n_fallbacks++;
    return PyObject_Vectorcall(fallback_fn, args, nargsf, kwnames);
}

static int truth(PyObject *o, int dflt)
{
    return o == NULL ? dflt : PyObject_IsTrue(o);
}

static PyObject *first_late(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    (void)self;
    PyObject *a[N_ARGS] = {NULL};
    n_calls++;
    if (nargs > N_ARGS)
        return call_fallback(args, (size_t)nargs, kwnames);
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    Py_ssize_t n_kw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < n_kw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int found = 0;
        for (int j = 0; j < N_ARGS && !found; j++)
            if (PyUnicode_CompareWithASCIIString(name, kw_names[j]) == 0) {
                if (a[j] != NULL)
                    return call_fallback(args, (size_t)nargs, kwnames);
                a[j] = args[nargs + i];
                found = 1;
            }
        if (!found)
            return call_fallback(args, (size_t)nargs, kwnames);
    }
    if (a[0] == NULL || a[1] == NULL || a[2] == NULL)
        return call_fallback(args, (size_t)nargs, kwnames);
    State s;
    memset(&s, 0, sizeof s);
    s.count = truth(a[3], 0);
    s.weighted = truth(a[4], 0);
    s.lst = truth(a[5], 1);
    s.fit = truth(a[7], 0);
    if (s.count < 0 || s.weighted < 0 || s.lst < 0 || s.fit < 0)
        return NULL;
    s.stop = Py_HUGE_VAL;
    if (a[6] != NULL && plain_number(a[6], &s.stop))
        return call_fallback(args, (size_t)nargs, kwnames);
    Arena ar = {NULL, 0, 0};
    Table *tables = NULL;
    void *block = NULL;
    int err = convert(&s, a[0], a[1], a[2], &ar, &tables, &block);
    PyObject *out;
    if (err == NO_MEMORY)
        out = PyErr_NoMemory();
    else if (err)
        out = NULL;
    else
        out = run_estimate(&s);
    free(block);
    free(tables);
    free(ar.d);
    if (err == NOT_PLAIN)
        return call_fallback(args, (size_t)nargs, kwnames);
    return out;
}

static PyObject *set_fallback(PyObject *self, PyObject *fn)
{
    (void)self;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the fallback must be callable");
        return NULL;
    }
    Py_INCREF(fn);
    Py_XSETREF(fallback_fn, fn);
    Py_RETURN_NONE;
}

static PyObject *fallbacks(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromUnsignedLongLong(n_fallbacks);
}

static PyObject *calls(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromUnsignedLongLong(n_calls);
}

static PyMethodDef methods[] = {
    {"first_late", (PyCFunction)(void (*)(void))first_late, METH_FASTCALL | METH_KEYWORDS,
     "first_late(items, start, accs, count=False, weighted=False, lst=True, stop=INF, fit=False, memo=None)\n"
     "sdrm3_estimate._first_late on C arrays (memo is not needed: the suffixes are reckoned per call)."},
    {"set_fallback", set_fallback, METH_O, "The pure-Python estimate, for inputs that are not plain."},
    {"fallbacks", fallbacks, METH_NOARGS, "How many calls went to the pure-Python estimate."},
    {"calls", calls, METH_NOARGS, "How many calls first_late took."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sdrm3_estimate_c", "SDRM3's schedule estimate, compiled.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sdrm3_estimate_c(void)
{
    return PyModule_Create(&module);
}
