/* Private to common/storage/: the backend tables and the objects they share. */
#ifndef POSTERN_STORAGE_INT_H
#define POSTERN_STORAGE_INT_H
#include "storage/storage.h"

#define STORAGE_PATH_MAX 4096

struct mailbox_vfuncs;

/* One backend: its folder operations and its mailbox operations. */
struct storage_vfuncs {
	const char *kind;
	/* Every folder operation takes disk names (folder.c: storage_name_to_disk, already
	 * checked).  The path of a folder (disk NULL: INBOX). */
	int (*folder_path)(struct mail_storage *st, const char *disk, char *out, size_t size);
	/* every folder's disk name (noselect: an mbox directory) */
	int (*folder_list)(struct mail_storage *st,
			   void (*add)(void *ctx, const char *disk, bool noselect), void *ctx,
			   const char **error_r);
	int (*folder_create)(struct mail_storage *st, const char *disk, const char **error_r);
	/* with the inferiors (folder.c checked their new names) */
	int (*folder_rename)(struct mail_storage *st, const char *from, const char *to,
			     const char **error_r);
	int (*folder_delete)(struct mail_storage *st, const char *disk, const char **error_r);
	const struct mailbox_vfuncs *box;
};

struct mailbox_vfuncs {
	/* set up box->be and box->ix */
	int (*open)(struct mailbox *box, const char **error_r);
	void (*close)(struct mailbox *box);
	/* Under the index lock: make the index match the folder.  force: even if the stamp
	 * says nothing changed. */
	int (*scan)(struct mailbox *box, bool force, const char **error_r);
	int (*msg_open)(struct mailbox *box, const struct index_rec *rec,
			struct mail_reader *r, const char **error_r);
	/* mbox: check under the read lock before a chunk is read; NULL: none */
	int (*read_check)(struct mail_reader *r, const char **error_r);
	void (*read_done)(struct mail_reader *r);
	/* Under the index lock, after a scan: change the message itself (Maildir: rename),
	 * then the caller updates the index. */
	int (*set_flags)(struct mailbox *box, struct index_rec *rec, const char **error_r);
	/* Under the index lock, after a scan: remove messages, update the index. */
	int (*expunge)(struct mailbox *box, const uint32_t *uids, size_t n,
		       const char **error_r);
	/* Save: the bytes go to s->fd (a temporary file) first; in a batch (s->batch) mbox
	 * shares the batch's file (s->fd_shared, s->start) and Maildir closes s->fd in
	 * mail_batch_add. */
	int (*save_begin)(struct mailbox *box, struct mail_save *s, const char **error_r);
	/* Under the index lock: make the saved message part of the folder; then the caller
	 * scans and looks up s->key to learn the UID (Maildir), or the backend sets
	 * s->uid. */
	int (*save_finish)(struct mailbox *box, struct mail_save *s, const char **error_r);
	void (*save_abort)(struct mailbox *box, struct mail_save *s);
	/* Under the index lock: make all n saved messages part of the folder, or none of
	 * them (storage.h, the batch), and set each s->uid. */
	int (*save_commit)(struct mailbox *box, struct mail_save **saves, size_t n,
			   const char **error_r);
	/* Move (NULL: copy + expunge).  move_out, under src's index lock after a scan: take
	 * the message of rec out of src into dst's folder in one atomic step (Maildir: one
	 * rename) and expunge it from src's index; key_r gets its name in dst.  1: cannot
	 * here (a name taken), nothing done, the caller copies.  move_in, under dst's index
	 * lock: the moved message's UID (a scan gives it one). */
	int (*move_out)(struct mailbox *src, const struct index_rec *rec, struct mailbox *dst,
			char *key_r, size_t size, const char **error_r);
	int (*move_in)(struct mailbox *dst, const char *key, uint32_t *uid_r,
		       const char **error_r);
	/* paths to watch for the notify fd */
	int (*watch)(struct mailbox *box, int ifd);
	void (*pop3_uidl)(const struct mailbox *box, const struct index_rec *rec,
			  char uidl_r[POP3_UIDL_MAX + 1]);
	/* Could the backend have written this key?  (The index is read as untrusted: a
	 * folder whose index holds another key is scanned again from scratch.) */
	bool (*key_ok)(const struct index_rec *rec);
};

struct mail_storage {
	const struct storage_vfuncs *v;
	char inbox[STORAGE_PATH_MAX];   /* Maildir root, or the mbox spool file */
	char folders[STORAGE_PATH_MAX]; /* Maildir root, or ~/mail ("" if no home) */
	char index_dir[STORAGE_PATH_MAX]; /* mbox: where indexes live ("" = memory only) */
	char err[320];
};

struct mailbox {
	struct mail_storage *st;
	const struct mailbox_vfuncs *v;
	char name[STORAGE_NAME_MAX + 1];      /* as the caller gave it (UTF-8) */
	char disk[STORAGE_NAME_MAX * 2 + 2];  /* on disk ("" for INBOX) */
	char path[STORAGE_PATH_MAX];
	struct index *ix;
	void *be;                   /* backend state */
	int notify_fd;
	struct storage_stats stats;
	/* Changes learnt since the last mailbox_sync() report (storage.h), from every
	 * refresh under any lock: sorted, without duplicates, merged by box_unlock(). */
	struct index_changes pending;
	struct index_changes lockch;  /* the open lock's changes (index_lock's ch) */
	uint32_t known_next;          /* UIDNEXT when the caller last heard */
	struct cache_batch *batch;    /* open: cache writes wait here (msgcache.c) */
	uint32_t known_uidvalidity;
	char err[320];
};

struct mail_reader {
	struct mailbox *box;
	int fd;
	bool own_fd;
	uint64_t pos, left;
	struct index_rec rec;      /* a copy; key not kept */
	uint64_t seen[3];          /* mbox: what the file looked like at the last check */
};

struct mail_batch {
	struct mailbox *box;
	struct mail_save **saves;
	size_t n, cap;
	int fd;                    /* mbox: the batch's temporary file; -1 none yet */
	struct mailbox *move_src;  /* a MOVE's batch: from there (mbox: its intent) */
	const uint32_t *move_uids; /* the originals, one per save */
};

struct mail_save {
	struct mailbox *box;
	struct mail_batch *batch;  /* NULL: a single save */
	int fd;                    /* the bytes so far */
	bool fd_shared;            /* the batch's: not closed with the save */
	uint64_t start;            /* where this message starts in fd */
	int64_t date;
	uint32_t flags;
	uint64_t raw, crlf;
	bool cr;
	char tmpname[STORAGE_PATH_MAX]; /* Maildir: tmp/ name */
	char key[STORAGE_PATH_MAX];     /* Maildir: the name it got in cur/ or new/ */
	uint32_t uid;
};

extern const struct storage_vfuncs maildir_storage;
extern const struct storage_vfuncs mbox_storage;
/* mbox MOVE's intent (mbox.c): done (remove: the originals are expunged or the copies
 * taken back; else only let go of it), and completed at the open of its folder. */
void mbox_move_done(struct mailbox *src, bool remove);
int mbox_move_recover(struct mailbox *box, const char **error_r);

/* Error text owned by the object: "what: strerror(err)". */
const char *storage_errf(char *buf, size_t size, const char *what, int err);
/* Rename the folder at path from to path to, refusing if to exists (both backends'
 * folder_rename after they computed their paths).  0 or -1 with *error_r set. */
int storage_rename_folder_path(struct mail_storage *st, const char *from, const char *to,
			       const char **error_r);
/* Every lock of a mailbox's index goes through these two: what the lock's refresh
 * learns of other sessions' changes, and the lock holder's own changes, are merged
 * into box->pending for the next mailbox_sync() report. */
int box_lock(struct mailbox *box, const char **error_r);
void box_unlock(struct mailbox *box);
/* msgcache.c: write what a batch holds (mailbox_close calls it too). */
int box_cache_flush(struct mailbox *box, const char **error_r);
void box_cache_batch_free(struct mailbox *box);
#define BOX_ERRF(box, what, e) storage_errf((box)->err, sizeof((box)->err), (what), (e))

#endif
