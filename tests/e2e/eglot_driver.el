;;; eglot_driver.el --- headless eglot 1.9 session against funcforge serve  -*- lexical-binding: t -*-

;; Run by tests/e2e/test_emacs.py as `emacs --batch -Q -l eglot_driver.el', with
;; FUNCFORGE_E2E set to a JSON object: {file, root, server (argv), options
;; (initializationOptions), function, result (path), timeout_ms}.  It opens the
;; tool file, waits for the failing-calls diagnostic in Flymake, runs
;; funcforge.optimize, asks eglot for the code actions on the function's name,
;; applies the "Apply funcforge proposal" action's edit with eglot's own
;; `eglot--apply-workspace-edit', saves the buffer, runs the action's command
;; through the server, and writes what it saw to the result file.  The pytest
;; side checks git and the file system.  `eglot--' internals are eglot 1.9's.

;;; Code:

(require 'package)
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)
(require 'eglot)
(require 'flymake)
(require 'json)
(require 'subr-x)

(defvar ff-spec
  (let ((raw (or (getenv "FUNCFORGE_E2E")
                 (progn (message "eglot_driver.el: FUNCFORGE_E2E is not set")
                        (kill-emacs 2)))))
    (json-parse-string raw :object-type 'alist :array-type 'list
                       :false-object :json-false :null-object nil))
  "The test's parameters.")

(defun ff-get (key) (alist-get key ff-spec))

(defvar ff-timeout (/ (ff-get 'timeout_ms) 1000.0) "Seconds for each wait.")
(defvar ff-out (list (cons 'ok :json-false) (cons 'step "start")) "The findings (alist).")
(defvar ff-messages nil "window/showMessage texts, newest first.")
(defvar ff-statuses nil "funcforge/status states, newest first.")
(defvar ff-seconds nil "Seconds per step (alist).")
(defvar ff-clock (float-time))

(defun ff-put (key value) (setf (alist-get key ff-out) value))

(defun ff-step (name)
  "Enter step NAME, noting how long the previous one took."
  (let ((now (float-time)))
    (push (cons (intern (alist-get 'step ff-out)) (- now ff-clock)) ff-seconds)
    (setq ff-clock now)
    (ff-put 'step name)))

(defun ff-finish (ok)
  "Write the findings and leave with exit code 0 when OK, else 1."
  (ff-put 'ok (if ok t :json-false))
  (ff-put 'messages (vconcat (reverse ff-messages)))
  (ff-put 'statuses (vconcat (reverse ff-statuses)))
  (ff-put 'seconds (or ff-seconds :null))
  (unless ok  ; what the server wrote to stderr, and eglot's event log, for the failure report
    (let (logs)
      (dolist (buf (buffer-list))
        (when (string-match-p "EGLOT" (buffer-name buf))
          (with-current-buffer buf
            (push (format "%s:\n%s" (buffer-name buf)
                          (buffer-substring-no-properties
                           (max (point-min) (- (point-max) 4000)) (point-max)))
                  logs))))
      (ff-put 'eglot_buffers (vconcat logs))))
  (with-temp-file (ff-get 'result)
    (insert (json-serialize ff-out :null-object :null :false-object :json-false)))
  (kill-emacs (if ok 0 1)))

(defun ff-wait (pred what)
  "Wait until PRED holds, processing server output; signal naming WHAT on timeout."
  (let ((deadline (+ (float-time) ff-timeout)))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.02))
    (or (funcall pred) (error "Timeout waiting for %s" what))))

(defun ff-lsp-diag (diag)
  "The LSP Diagnostic behind the Flymake diagnostic DIAG."
  (cdr (assoc 'eglot-lsp-diag (flymake-diagnostic-data diag))))

(defun ff-diagnostic (needle)
  "The first Flymake diagnostic whose LSP message contains NEEDLE, or nil."
  (seq-find (lambda (d) (string-search needle (plist-get (ff-lsp-diag d) :message)))
            (flymake-diagnostics)))

(defun ff-describe (diag)
  "DIAG as recorded: LSP message and severity, Flymake's text, type, place."
  (let ((lsp (ff-lsp-diag diag)) (beg (flymake-diagnostic-beg diag)))
    (list (cons 'message (plist-get lsp :message))
          (cons 'severity (plist-get lsp :severity))
          (cons 'flymake_text (flymake-diagnostic-text diag))
          (cons 'flymake_type (symbol-name (flymake-diagnostic-type diag)))
          (cons 'line (1- (line-number-at-pos beg)))
          (cons 'col (save-excursion (goto-char beg) (current-column)))
          (cons 'end_col (save-excursion (goto-char (flymake-diagnostic-end diag))
                                         (current-column))))))

(defun ff-goto-def (fn)
  "Move point to the start of `def FN(' in the current buffer."
  (goto-char (point-min))
  (re-search-forward (concat "^def " (regexp-quote fn) "("))
  (goto-char (match-beginning 0)))

(defun ff-request (server method params)
  "METHOD through eglot's connection SERVER, bounded by `ff-timeout'."
  (jsonrpc-request server method params :timeout ff-timeout))

;; How an Emacs user would see the server's messages and its status notification.
(cl-defmethod eglot-handle-notification :before
  (_server (_method (eql window/showMessage)) &key message &allow-other-keys)
  (push message ff-messages))

(cl-defmethod eglot-handle-notification
  (_server (_method (eql funcforge/status)) &key state &allow-other-keys)
  (push state ff-statuses))

(defun ff-run ()
  (let* ((fn (ff-get 'function))
         (options (json-parse-string (json-serialize (ff-get 'options))
                                     :object-type 'plist :false-object :json-false)))
    (setq eglot-server-programs
          `((python-mode . (,@(ff-get 'server) :initializationOptions ,options)))
          eglot-sync-connect t
          eglot-connect-timeout ff-timeout
          jsonrpc-default-request-timeout ff-timeout)
    (ff-step "open")
    (find-file (ff-get 'file))
    (unless (eq major-mode 'python-mode) (error "Not in python-mode: %s" major-mode))
    (apply #'eglot (eglot--guess-contact))
    (let ((server (eglot--current-server-or-lose)))
      (ff-step "diagnostic")
      (ff-wait (lambda () (ff-diagnostic "logged calls failed")) "the failing-calls diagnostic")
      (ff-put 'diagnostic (ff-describe (ff-diagnostic "logged calls failed")))

      (ff-step "optimize")
      (let ((r (ff-request server :workspace/executeCommand
                           `(:command "funcforge.optimize" :arguments [(:function ,fn)]))))
        (ff-put 'optimize (list (cons 'proposals (plist-get r :proposals))))
        (when (seq-empty-p (plist-get r :proposals))
          (error "funcforge.optimize proposed nothing: %S" r)))
      (ff-wait (lambda () (ff-diagnostic "proposal")) "the proposal-ready diagnostic")
      (ff-put 'proposal_diagnostic (ff-describe (ff-diagnostic "proposal")))

      (ff-step "type a line")
      ;; The user types a line above the function; it is saved with the edit below
      ;; (as autosave would), so the file holds more than the proposal.
      (ff-goto-def fn)
      (insert "# typed above\n")
      (eglot--signal-textDocument/didChange)

      (ff-step "code action")
      (ff-goto-def fn)
      (forward-char 4)
      (let* ((bounds (bounds-of-thing-at-point 'symbol))
             ;; eglot's own request: Flymake's diagnostics in the range go in the context.
             (actions (eglot-code-actions (car bounds) (cdr bounds)))
             (titles (mapcar (lambda (a) (plist-get a :title)) actions))
             (action (seq-find (lambda (a) (string-prefix-p "Apply funcforge proposal"
                                                            (plist-get a :title)))
                               actions))
             (before (buffer-string)))
        (ff-put 'action_titles (vconcat titles))
        (unless action (error "No \"Apply funcforge proposal\" action: %S" titles))
        (ff-put 'action (list (cons 'title (plist-get action :title))
                              (cons 'kind (plist-get action :kind))))
        ;; eglot 1.9 has no codeAction/resolve, so the edit must come with the action.
        (ff-put 'resolved :json-false)
        (unless (plist-get action :edit) (error "The action has no edit: %S" action))

        (ff-step "apply edit")
        (eglot--apply-workspace-edit (plist-get action :edit))
        (ff-put 'buffer_text (buffer-substring-no-properties (point-min) (point-max)))
        (when (equal before (buffer-string)) (error "The edit left the buffer unchanged"))
        ;; Save, as an Emacs user does; the server then commits the file as the editor wrote it.
        (save-buffer)
        (eglot--signal-textDocument/didChange)

        (ff-step "apply command")
        (let ((command (plist-get action :command)))
          (unless command (error "The action has no command"))
          (ff-put 'command (plist-get command :command))
          (let ((r (ff-request server :workspace/executeCommand
                               `(:command ,(plist-get command :command)
                                 :arguments ,(plist-get command :arguments)))))
            (ff-put 'apply (list (cons 'commit (plist-get r :commit))
                                 (cons 'files (plist-get r :files))
                                 (cons 'error (or (plist-get r :error) :null))))))
        ;; The server must not rewrite the file the editor saved (Emacs would then warn
        ;; that it changed on disk).
        (ff-put 'changed_on_disk (if (verify-visited-file-modtime) :json-false t))
        (ff-put 'buffer_modified (if (buffer-modified-p) t :json-false))
        (ff-put 'saved_text (with-temp-buffer
                              (insert-file-contents (ff-get 'file))
                              (buffer-string))))

      ;; Positions follow the editor's text after Apply: the failures, now history,
      ;; sit on the function's name line.
      (ff-step "after apply")
      (ff-wait (lambda () (ff-diagnostic "before your change")) "the history diagnostic")
      (let ((history (ff-describe (ff-diagnostic "before your change"))))
        (ff-goto-def fn)
        (push (cons 'def_line (1- (line-number-at-pos))) history)
        (ff-put 'history history))
      (ff-goto-def fn)
      (forward-char 6)
      (let* ((r (ff-request server :textDocument/hover
                            (eglot--TextDocumentPositionParams)))
             (contents (plist-get r :contents)))
        (ff-put 'hover (list (cons 'kind (plist-get contents :kind))
                             (cons 'value (plist-get contents :value)))))

      (ff-step "shutdown")
      (eglot-shutdown server)
      (ff-step "done"))))

(condition-case err
    (progn (ff-run) (ff-finish t))
  (error (ff-put 'error (error-message-string err))
         (ff-finish nil)))

;;; eglot_driver.el ends here
