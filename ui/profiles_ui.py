"""PACS profile editing: the list model, the editor (validated as you type) and the manager dialog."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any, ClassVar

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.profiles import COUNT_LIMITS, Profile, ProfileFileError, ProfileStore, check_field, coerce_field
from core.strategies import STRATEGY_ORDER, strategy_syntaxes

from .controllers.echo import EchoController, format_echo
from .qtcompat import emit
from .wording import GLOSSARY, plain_reason
from .workers import TaskWorker, ThreadPool

LOGGER = logging.getLogger(__name__)

#: The invalid index (the root), as the default parent argument of Qt overrides.
_ROOT = QModelIndex()

STRATEGY_TIPS = {
    "universal": "Implicit VR Little Endian only: every PACS accepts it",
    "conservative": "Implicit and Explicit VR Little Endian",
    "standard": "Implicit/Explicit VR Little Endian and Explicit VR Big Endian",
    "compression": "uncompressed plus RLE, JPEG 2000 and JPEG-LS lossless",
    "extended": "every transfer syntax, lossy included",
}


class ProfileListModel(QAbstractListModel):
    """The profiles of a :class:`core.profiles.ProfileStore`, by name (used by the selector and the manager)."""

    def __init__(self, store: ProfileStore, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.store.profiles)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.store.profiles):
            return None
        p = self.store.profiles[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return p.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{p.remote_ae_title}@{p.remote_host}:{p.remote_port} as {p.local_ae_title}, strategy "
                f"{p.strategy}" + (", TLS" if p.tls_enabled else "") + (" (built-in local test PACS)" if p.is_local_test else "")
            )
        if role == Qt.ItemDataRole.UserRole:
            return p
        return None

    def profile(self, row: int) -> Profile | None:
        """The profile at `row`, or None."""
        return self.store.profiles[row] if 0 <= row < len(self.store.profiles) else None

    def row_of(self, name: str) -> int:
        """The row of the profile called `name`, or -1."""
        return next((i for i, p in enumerate(self.store.profiles) if p.name == name), -1)

    def replace_at(self, row: int, profile: Profile) -> None:
        """Replace a profile and save."""
        self.store.profiles[row] = profile
        emit(self.dataChanged, self.index(row), self.index(row))
        self._save()

    def insert(self, row: int, profile: Profile) -> None:
        """Insert a profile at `row` and save."""
        self.beginInsertRows(QModelIndex(), row, row)
        self.store.profiles.insert(row, profile)
        self.endInsertRows()
        self._save()

    def remove(self, row: int) -> None:
        """Remove a profile and save."""
        self.beginRemoveRows(QModelIndex(), row, row)
        del self.store.profiles[row]
        self.endRemoveRows()
        self._save()

    def reload(self) -> None:
        """Tell views the whole list changed (after an import) and save."""
        self.beginResetModel()
        self.endResetModel()
        self._save()

    def _save(self) -> None:
        try:
            self.store.save()
        except (OSError, ProfileFileError) as exc:
            LOGGER.error("Cannot save the profiles to %s: %s", self.store.path, exc)


class _FieldRow(QWidget):
    """An input with its reason label underneath (red when invalid)."""

    def __init__(self, editor: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.editor = editor
        self.reason = QLabel(self)
        self.reason.setStyleSheet("color:#b91c1c;")
        self.reason.setWordWrap(True)
        self.reason.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        lay.addWidget(editor)
        lay.addWidget(self.reason)

    def show_reason(self, reason: str) -> None:
        self.reason.setText(reason)
        self.reason.setVisible(bool(reason))
        self.editor.setStyleSheet("QLineEdit{border:1px solid #b91c1c;}" if reason else "")


class ProfileEditor(QDialog):
    """Edits one profile; every field is checked as you type and the reason is shown beside it.

    Args:
        profile: the profile to edit (a copy is edited).
        pool: where *Test connection* runs its C-ECHO and the keyring is written.
        name_taken: tells whether another profile already has a name.

    Attributes:
        echo_controller: runs *Test connection* (its ``echo_finished`` tells when it ended).

    Signals:
        passphrase_stored(str): the key passphrase went to the keyring (``""``) or why it did not.
    """

    passphrase_stored = Signal(str)

    TEXT_FIELDS = (
        ("name", "Name"),
        ("remote_host", "Host"),
        ("remote_port", "Port"),
        ("remote_ae_title", "Called AE title"),
        ("local_ae_title", "Calling AE title"),
    )
    TIMING_FIELDS = (
        ("acse_timeout_s", "Association (ACSE) timeout, s"),
        ("dimse_timeout_s", "Response (DIMSE) timeout, s"),
        ("network_timeout_s", "Network timeout, s"),
        ("connect_timeout_s", "Connect timeout, s"),
        ("max_pdu_bytes", "Max PDU, bytes"),
    )
    TLS_FILE_FIELDS = (
        ("tls_ca_cert_file", "CA certificate file"),
        ("tls_client_cert_file", "Client certificate file"),
        ("tls_client_key_file", "Client key file"),
    )
    TLS_SECRET_FIELDS = (
        ("tls_ca_cert_secret_name", "CA certificate secret ID"),
        ("tls_client_cert_secret_name", "Client certificate secret ID"),
        ("tls_client_key_secret_name", "Client key secret ID"),
        ("gcp_project_id", "Google Cloud project"),
        ("tls_key_password_keyring", "Key passphrase keyring entry"),
    )

    #: Plain explanations of the fields (tooltips of the field and of its label).
    FIELD_TIPS: ClassVar[dict[str, str]] = {
        "remote_ae_title": GLOSSARY["called_ae"] + " 1-16 characters, no backslash (PS3.5).",
        "local_ae_title": GLOSSARY["calling_ae"] + " Default AXIOM_SCU.",
        "remote_host": "The PACS's host name or IP address.",
        "remote_port": "The PACS's DICOM port (often 104 or 11112).",
        "acse_timeout_s": GLOSSARY["acse_timeout"],
        "dimse_timeout_s": GLOSSARY["dimse_timeout"],
        "network_timeout_s": GLOSSARY["network_timeout"],
        "connect_timeout_s": GLOSSARY["connect_timeout"],
        "max_pdu_bytes": GLOSSARY["max_pdu"],
        "implicit_vr_only": GLOSSARY["implicit_vr_only"],
        "max_resends": GLOSSARY["max_resends"],
        "reconnect_attempts": GLOSSARY["reconnect_attempts"],
    }

    def __init__(
        self,
        profile: Profile,
        pool: ThreadPool,
        name_taken: Callable[[str], bool] = lambda n: False,
        parent: QWidget | None = None,
        local_pacs: Any = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(f"PACS profile - {profile.name}")
        self._original = profile
        self._pool = pool
        self._name_taken = name_taken
        # the same tests, countdown and hints as the main window's (the local test PACS included)
        self.echo_controller = EchoController(pool, local_pacs, parent=self)
        self.echo_controller.echo_started.connect(self._on_echo_echo_started)
        self.echo_controller.echo_ticked.connect(self._on_echo_echo_ticked)
        self.echo_controller.echo_cancelled.connect(self._on_echo_echo_cancelled)
        self.echo_controller.echo_finished.connect(self._on_echo_echo_finished)
        self.rows: dict[str, _FieldRow] = {}
        self.edits: dict[str, QLineEdit] = {}

        conn = self._build_connection(profile)
        outage = self._build_outage(profile)
        send = self._build_sending(profile)
        timing = self._build_timing(profile)
        self.tls_box = self._build_tls(profile)
        test_row = self._build_test_row()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        # two columns in a scroll area (a small screen scrolls them; the buttons stay in view):
        # connection and, only when TLS is on, its certificates | sending, outages, timeouts
        body = QWidget(self)
        left = QVBoxLayout()
        left.addWidget(conn)
        left.addWidget(self.tls_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(send)
        right.addWidget(outage)
        right.addWidget(timing)
        right.addStretch(1)
        cols = QHBoxLayout(body)
        cols.setContentsMargins(0, 0, 0, 0)
        cols.addLayout(left, 1)
        cols.addLayout(right, 1)
        conn.setMinimumWidth(400)
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay = QVBoxLayout(self)
        lay.addWidget(self.scroll, 1)
        lay.addLayout(test_row)
        lay.addWidget(self.buttons)
        self._on_strategy_changed()
        self._on_tls_toggled(self.tls_enabled.isChecked())
        self.validate()

    def fit_to_screen(self) -> None:
        """As large as the content wants, never larger than the screen (the form scrolls instead)."""
        body = self.scroll.widget()
        want_w = body.sizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width() + 30
        want_h = body.sizeHint().height() + self.buttons.sizeHint().height() + self.test_button.sizeHint().height() + 60
        screen = self.screen() or QGuiApplication.primaryScreen()
        avail = screen.availableGeometry() if screen is not None else None
        if avail is not None:
            want_w = min(want_w, avail.width() - 40)
            want_h = min(want_h, avail.height() - 60)
        self.resize(want_w, want_h)
        if avail is not None and self.isVisible():  # grown (TLS turned on): keep Save and Cancel on the screen
            frame = self.frameGeometry()
            x = min(max(frame.left(), avail.left()), avail.right() - frame.width())
            y = min(max(frame.top(), avail.top()), avail.bottom() - frame.height())
            if (x, y) != (frame.left(), frame.top()):
                self.move(x, y)

    def showEvent(self, event: Any) -> None:
        if not getattr(self, "_fitted", False):
            self._fitted = True
            self.fit_to_screen()
        super().showEvent(event)

    def _label(self, text: str, key: str) -> QLabel:
        lab = QLabel(text, self)
        tip = self.FIELD_TIPS.get(key, "")
        if tip:
            lab.setToolTip(tip)
        return lab

    def _build_connection(self, profile: Profile) -> QGroupBox:
        conn = QGroupBox("Connection", self)
        cf = QFormLayout(conn)
        for key, label in self.TEXT_FIELDS:
            cf.addRow(self._label(label, key), self._line(key, str(getattr(profile, key))))
        self.edits["local_ae_title"].setPlaceholderText("AXIOM_SCU")
        self.edits["remote_host"].setPlaceholderText("pacs.example.org or 10.0.0.5")
        for key, tip in self.FIELD_TIPS.items():
            if key in self.edits:
                self.edits[key].setToolTip(tip)
        self.tls_enabled = QCheckBox("Use DICOM TLS (an encrypted connection; certificates below)", self)
        self.tls_enabled.setChecked(bool(profile.tls_enabled))
        self.tls_enabled.setToolTip("Only when the PACS's administrator says so: the PACS must listen for TLS on this port")
        cf.addRow("", self.tls_enabled)
        return conn

    def _build_sending(self, profile: Profile) -> QGroupBox:
        send = QGroupBox("Sending", self)
        sf = QFormLayout(send)
        self.strategy = QComboBox(self)
        for s in STRATEGY_ORDER:
            self.strategy.addItem(s.value, s.value)
            self.strategy.setItemData(
                self.strategy.count() - 1,
                f"{STRATEGY_TIPS[s.value]} ({len(strategy_syntaxes(s))} syntaxes)",
                Qt.ItemDataRole.ToolTipRole,
            )
        self.strategy.setCurrentIndex(max(0, self.strategy.findData(profile.strategy)))
        self.strategy.setToolTip("The first transfer-syntax strategy; more conservative ones follow on fallback")
        self.strategy_tip = QLabel(self)
        self.strategy_tip.setStyleSheet("color:#4b5563;")
        self.strategy.currentIndexChanged.connect(self._on_strategy_changed)
        sf.addRow("Transfer-syntax strategy", self.strategy)
        sf.addRow("", self.strategy_tip)
        self.max_retries = QSpinBox(self)
        self.max_retries.setRange(0, len(STRATEGY_ORDER) - 1)
        self.max_retries.setValue(int(profile.max_retries) if str(profile.max_retries).isdigit() else 4)
        self.max_retries.setToolTip("How many more conservative strategies to try when the PACS refuses")
        sf.addRow("Max retries (fallback steps)", self.max_retries)
        self.parallel = QSpinBox(self)
        self.parallel.setRange(1, 16)
        self.parallel.setValue(int(profile.parallel_associations) if str(profile.parallel_associations).isdigit() else 1)
        self.parallel.setToolTip(
            "Send over several associations at once (each study stays on one); associations the PACS refuses are given up"
        )
        sf.addRow("Parallel associations", self.parallel)
        self.allow_lossy = QCheckBox("Allow lossy conversion (never needed for uncompressed files)", self)
        self.allow_lossy.setChecked(bool(profile.allow_lossy))
        sf.addRow("", self.allow_lossy)
        self.implicit_vr_only = QCheckBox("Implicit VR Little Endian only (for older PACS)", self)
        self.implicit_vr_only.setChecked(bool(profile.implicit_vr_only))
        self.implicit_vr_only.setToolTip(self.FIELD_TIPS["implicit_vr_only"])
        sf.addRow("", self.implicit_vr_only)
        self.verify_arrival = QCheckBox("Check arrival after sending (storage commitment, else C-FIND)", self)
        self.verify_arrival.setChecked(bool(profile.verify_arrival))
        self.verify_arrival.setToolTip(
            "After a send, ask the PACS whether it holds each instance it acknowledged; "
            "the Verified column shows committed, found or not found"
        )
        sf.addRow("", self.verify_arrival)
        return send

    def _count_box(self, key: str, value: Any, default: int) -> QSpinBox:
        box = QSpinBox(self)
        box.setObjectName(key)
        box.setRange(0, COUNT_LIMITS[key])
        box.setValue(int(value) if str(value).isdigit() else default)
        box.setToolTip(self.FIELD_TIPS[key])
        return box

    def _build_outage(self, profile: Profile) -> QGroupBox:
        outage = QGroupBox("When the PACS is busy or down", self)
        of = QFormLayout(outage)
        self.reconnect_attempts = self._count_box("reconnect_attempts", profile.reconnect_attempts, 5)
        of.addRow(self._label("Reconnect attempts", "reconnect_attempts"), self.reconnect_attempts)
        self.max_resends = self._count_box("max_resends", profile.max_resends, 3)
        self.max_resends.setSpecialValueText("0 (never)")
        of.addRow(self._label("Re-sends per instance", "max_resends"), self.max_resends)
        return outage

    def _build_timing(self, profile: Profile) -> QGroupBox:
        timing = QGroupBox("Timeouts and PDU", self)
        tf = QFormLayout(timing)
        for key, label in self.TIMING_FIELDS:
            value = getattr(profile, key)
            tf.addRow(self._label(label, key), self._line(key, f"{value:g}" if isinstance(value, float) else str(value)))
            self.edits[key].setToolTip(self.FIELD_TIPS.get(key, ""))
        return timing

    def _build_tls(self, profile: Profile) -> QGroupBox:
        tls = QGroupBox("TLS: certificates as files or as Google Cloud Secret Manager secret IDs", self)
        lf = QFormLayout(tls)
        self.tls_verify = QCheckBox("Verify the PACS's host name", self)
        self.tls_verify.setChecked(bool(profile.tls_verify_hostname))
        lf.addRow("", self.tls_verify)
        for key, label in self.TLS_FILE_FIELDS:
            row = self._line(key, str(getattr(profile, key)))
            browse = QPushButton("Browse…", self)
            browse.clicked.connect(lambda _c=False, k=key: self._browse(k))
            box = QWidget(self)
            box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            row.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            hb = QHBoxLayout(box)
            hb.setContentsMargins(0, 0, 0, 0)
            hb.addWidget(row, 1)
            hb.addWidget(browse, 0, Qt.AlignmentFlag.AlignTop)
            lf.addRow(label, box)
        for key, label in self.TLS_SECRET_FIELDS:
            lf.addRow(label, self._line(key, str(getattr(profile, key))))
        self.passphrase_button = QPushButton("Store key passphrase in the OS keyring…", self)
        self.passphrase_button.setToolTip(
            "Ask for the client key's passphrase and keep it in the OS keyring under the "
            "entry named above (default: the profile name); the profile keeps only "
            "the entry's name"
        )
        self.passphrase_button.clicked.connect(self._on_passphrase_clicked)
        self.passphrase_result = QLabel(self)
        self.passphrase_result.setWordWrap(True)
        lf.addRow(self.passphrase_button, self.passphrase_result)
        note = QLabel("Saved: paths, secret IDs, a keyring entry name.\nNever saved: keys, certificates, passwords.", self)
        note.setStyleSheet("color:#4b5563;")
        lf.addRow(note)
        self.tls_enabled.toggled.connect(self._on_tls_toggled)
        return tls

    def _build_test_row(self) -> QHBoxLayout:
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setToolTip("Check that the PACS answers with these settings: " + GLOSSARY["c_echo"])
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.test_result = QLabel(self)
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)
        return test_row

    def _line(self, key: str, text: str) -> _FieldRow:
        edit = QLineEdit(text, self)
        edit.setObjectName(key)
        edit.textChanged.connect(self.validate)
        self.edits[key] = edit
        row = _FieldRow(edit, self)
        self.rows[key] = row
        return row

    def _browse(self, key: str) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a PEM file", self.edits[key].text(), "PEM files (*.pem *.crt *.cer *.key);;All files (*)"
        )
        if path:
            self.edits[key].setText(path)

    @Slot()
    def _on_strategy_changed(self, _i: int = 0) -> None:
        self.strategy_tip.setText(STRATEGY_TIPS.get(self.strategy.currentData(), ""))

    @Slot(bool)
    def _on_tls_toggled(self, on: bool) -> None:
        self.tls_box.setVisible(on)
        if self.isVisible():
            self.fit_to_screen()

    @Slot()
    def _on_passphrase_clicked(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        entry = self.keyring_entry()
        password, ok = QInputDialog.getText(
            self,
            "Client key passphrase",
            f"Passphrase of the client private key (kept in the OS keyring as “{entry}”):",
            QLineEdit.EchoMode.Password,
        )
        if ok and password:
            self.store_passphrase(password)

    def keyring_entry(self) -> str:
        """The keyring entry for the key passphrase: the field's value, else the profile's name."""
        return self.edits["tls_key_password_keyring"].text().strip() or self.edits["name"].text().strip()

    def store_passphrase(self, password: str) -> None:
        """Store `password` in the OS keyring (on a worker) and put the entry's name in the profile."""
        from core.secrets import set_key_password

        entry = self.keyring_entry()
        self.edits["tls_key_password_keyring"].setText(entry)
        self.passphrase_result.setStyleSheet("color:#2563eb;")
        self.passphrase_result.setText("Storing…")
        worker = TaskWorker(set_key_password, entry, password)
        worker.succeeded.connect(self._on_passphrase_stored)
        worker.failed.connect(self._on_passphrase_failed)
        self._pool.start(worker, "keyring")

    @Slot(object)
    def _on_passphrase_stored(self, _none: object) -> None:
        self.passphrase_result.setStyleSheet("color:#15803d;")
        self.passphrase_result.setText(f"✓ stored in the OS keyring as “{self.keyring_entry()}”")
        emit(self.passphrase_stored, "")

    @Slot(object)
    def _on_passphrase_failed(self, exc: Exception) -> None:
        self.passphrase_result.setStyleSheet("color:#b91c1c;")
        self.passphrase_result.setText(f"✗ {exc}")
        emit(self.passphrase_stored, str(exc))

    # -- values --------------------------------------------------------------------------------------

    def field_text(self, key: str) -> str:
        """The text of a line-edit field."""
        return self.edits[key].text()

    def set_field_text(self, key: str, text: str) -> None:
        """Type into a field (for tests and scripted use)."""
        self.edits[key].setText(text)

    def reasons(self) -> dict[str, str]:
        """``{field: reason}`` for every invalid field shown."""
        out = {}
        for key, row in self.rows.items():
            if row.reason.text():
                out[key] = row.reason.text()
        return out

    @Slot()
    def validate(self) -> bool:
        """Check every field, show the reasons, enable Save only when all are valid."""
        ok_all = True
        for key, edit in self.edits.items():
            ok, reason = check_field(key, edit.text())
            if ok and key == "name" and edit.text().strip() != self._original.name and self._name_taken(edit.text().strip()):
                ok, reason = False, "another profile already has this name"
            self.rows[key].show_reason("" if ok else reason)
            ok_all &= ok
        if ok_all:
            errs = self.profile().errors()
            for key, reason in errs.items():
                if key in self.rows:
                    self.rows[key].show_reason(reason)
            ok_all = not errs
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(ok_all)
        self.test_button.setEnabled(ok_all or self.echo_controller.busy)
        if not ok_all:
            self.test_result.setStyleSheet("color:#b91c1c;")
            self.test_result.setText("Fix the fields marked in red to test the connection or save.")
        elif self.test_result.text().startswith("Fix the fields"):
            self.test_result.clear()
        return ok_all

    def profile(self) -> Profile:
        """The edited profile (values as typed; check :meth:`validate` first)."""
        values: dict[str, Any] = {}
        for key, edit in self.edits.items():
            text = edit.text().strip()
            try:
                values[key] = coerce_field(key, text)
            except ValueError:
                values[key] = text
        values["strategy"] = self.strategy.currentData()
        values["max_retries"] = self.max_retries.value()
        values["parallel_associations"] = self.parallel.value()
        values["allow_lossy"] = self.allow_lossy.isChecked()
        values["implicit_vr_only"] = self.implicit_vr_only.isChecked()
        values["max_resends"] = self.max_resends.value()
        values["reconnect_attempts"] = self.reconnect_attempts.value()
        values["verify_arrival"] = self.verify_arrival.isChecked()
        values["tls_enabled"] = self.tls_enabled.isChecked()
        values["tls_verify_hostname"] = self.tls_verify.isChecked()
        known = {f.name for f in fields(Profile)}
        return replace(self._original, **{k: v for k, v in values.items() if k in known})

    # -- test connection ------------------------------------------------------------------------------

    @Slot()
    def test_connection(self) -> None:
        """C-ECHO with the current values, in the background."""
        if self.validate():
            self.echo_controller.start(self.profile())

    @Slot()
    def _on_test_button_clicked(self) -> None:
        if self.echo_controller.busy:
            self.echo_controller.cancel()
        else:
            self.test_connection()

    @Slot(object)
    def _on_echo_echo_started(self, _profile: Profile) -> None:
        self.test_button.setText("Cancel test")
        self.test_result.setStyleSheet("color:#1d4ed8;")
        self._on_echo_echo_ticked(self.echo_controller.seconds_left())

    @Slot(int)
    def _on_echo_echo_ticked(self, seconds_left: int) -> None:
        self.test_result.setText(f"Testing… (C-ECHO) - at most {seconds_left} s left")

    @Slot()
    def _on_echo_echo_cancelled(self) -> None:
        self.test_button.setText("Test connection")
        self.test_result.setStyleSheet("color:#4b5563;")
        self.test_result.setText("Connection test cancelled: no answer had come yet.")

    @Slot(object, object)
    def _on_echo_echo_finished(self, result: dict[str, Any] | None, error: str | None) -> None:
        self.test_button.setText("Test connection")
        self.test_button.setEnabled(True)
        if error is not None:
            self.test_result.setStyleSheet("color:#b91c1c;")
            self.test_result.setText(f"✗ {plain_reason(error).text()}")
            self.test_result.setToolTip(error)
        else:
            assert result is not None
            good = result.get("status") != "failure"
            self.test_result.setStyleSheet("color:#15803d;" if good else "color:#b91c1c;")
            self.test_result.setText(("✓ " if good else "✗ ") + format_echo(result))


class ProfilesDialog(QDialog):
    """The profile list: add, edit, duplicate, delete, import and export."""

    def __init__(self, model: ProfileListModel, pool: ThreadPool, parent: QWidget | None = None, local_pacs: Any = None):
        super().__init__(parent)
        self.setWindowTitle("PACS profiles")
        self.model = model
        self.pool = pool
        self.local_pacs = local_pacs
        self.list = QListView(self)
        self.list.setModel(model)
        self.list.doubleClicked.connect(lambda _i: self.edit_selected())
        buttons = QVBoxLayout()
        for text, slot, key, tip in (
            ("Add…", self.add, QKeySequence.StandardKey.New, "Create a new profile"),
            ("Edit…", self.edit_selected, None, "Edit the selected profile"),
            ("Duplicate", self.duplicate_selected, None, "Copy the selected profile"),
            ("Delete", self.delete_selected, QKeySequence.StandardKey.Delete, "Delete the selected profile"),
            ("Import…", self.import_profiles, None, "Add profiles from a JSON file"),
            ("Export…", self.export_profiles, None, "Write all profiles to a JSON file (no secrets are in them)"),
        ):
            b = QPushButton(text, self)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            if key is not None:
                b.setShortcut(QKeySequence(key))
            buttons.addWidget(b)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        close.accepted.connect(self.accept)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addLayout(buttons)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Saved in {model.store.path}", self))
        lay.addLayout(top)
        lay.addWidget(close)
        self.resize(560, 360)
        if model.rowCount():
            self.list.setCurrentIndex(model.index(0))

    def _row(self) -> int:
        idx = self.list.currentIndex()
        return idx.row() if idx.isValid() else -1

    def _taken(self, exclude: int) -> Callable[[str], bool]:
        return lambda name: any(p.name == name for i, p in enumerate(self.model.store.profiles) if i != exclude)

    def editor_for(self, profile: Profile, row: int) -> ProfileEditor:
        """A profile editor bound to this list (tests drive it directly)."""
        return ProfileEditor(profile, self.pool, self._taken(row), self, self.local_pacs)

    @Slot()
    def add(self) -> None:
        """Create a profile with the editor."""
        p = Profile(name=self.model.store.unique_name("New PACS"))
        ed = self.editor_for(p, -1)
        if ed.exec() == QDialog.DialogCode.Accepted:
            self.model.insert(self.model.rowCount(), ed.profile())
            self.list.setCurrentIndex(self.model.index(self.model.rowCount() - 1))

    @Slot()
    def edit_selected(self) -> None:
        """Edit the selected profile."""
        row = self._row()
        p = self.model.profile(row)
        if p is None:
            return
        ed = self.editor_for(p, row)
        if ed.exec() == QDialog.DialogCode.Accepted:
            self.model.replace_at(row, ed.profile())

    @Slot()
    def duplicate_selected(self) -> None:
        """Copy the selected profile under a new name."""
        row = self._row()
        p = self.model.profile(row)
        if p is None:
            return
        self.model.insert(
            row + 1, replace(p, name=self.model.store.unique_name(f"{p.name} copy"), is_local_test=False, extra=dict(p.extra))
        )
        self.list.setCurrentIndex(self.model.index(row + 1))

    @Slot()
    def delete_selected(self) -> None:
        """Delete the selected profile (after asking)."""
        row = self._row()
        p = self.model.profile(row)
        if p is None:
            return
        if QMessageBox.question(self, "Delete profile", f"Delete the profile “{p.name}”?") != QMessageBox.StandardButton.Yes:
            return
        self.model.remove(row)

    @Slot()
    def import_profiles(self) -> None:
        """Add profiles from a JSON file."""
        path, _ = QFileDialog.getOpenFileName(self, "Import profiles", "", "JSON (*.json);;All files (*)")
        if not path:
            return
        try:
            added = self.model.store.import_json(path)
        except ProfileFileError as exc:
            QMessageBox.warning(self, "Import profiles", str(exc))
            return
        self.model.reload()
        QMessageBox.information(self, "Import profiles", f"Added {len(added)} profile(s): " + ", ".join(p.name for p in added))

    @Slot()
    def export_profiles(self) -> None:
        """Write all profiles to a JSON file."""
        path, _ = QFileDialog.getSaveFileName(self, "Export profiles", "pacs-profiles.json", "JSON (*.json)")
        if not path:
            return
        try:
            n = self.model.store.export_json(path)
        except OSError as exc:
            QMessageBox.warning(self, "Export profiles", f"Cannot write {path}: {exc.strerror or exc}")
            return
        QMessageBox.information(self, "Export profiles", f"Wrote {n} profile(s) to {path}")
