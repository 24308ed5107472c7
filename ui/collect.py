"""The Collect page's parts: pick a collection, fill its classes from the webcam and uploads, train, test.

Every change to a collection happens in a widget callback (before the page is drawn again), so a rerun
never repeats it: a camera shot is stored once, then its camera gets a fresh key and is ready for the next
one; an upload is stored once, then its uploader is emptied the same way. Messages wait in session state
until the part of the page they belong to is drawn.
"""

from __future__ import annotations

import streamlit as st

from core.data import collection as col
from core.errors import LabError
from ui.i18n import N_, t

UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff", "zip"]
THUMBNAILS = 8  # newest photos shown on a class card
CARDS_PER_ROW = 3
# core.data.collection.NameProblem reasons, said in the page's language (core's message is the English)
NAME_PROBLEMS = {
    "empty": N_("Type a name first."),
    "long": N_("That name has {length} characters; at most {limit} are allowed."),
    "characters": N_("A name may not contain {chars}: use letters, digits, spaces, '-' or '_'."),
    "dot": N_("A name may not start with '.'."),
    "reserved": N_("'{name}' is reserved for the lab's own files: choose another name."),
    "taken": N_("'{other}' already exists (capitals do not count): choose another name."),
}
FLASH = "collect_flash"  # {place: [(kind, text)]}: messages from callbacks, shown once where they belong
SEEN = "collect_seen"  # file ids of camera shots and uploads already stored (a replayed value adds nothing)
ROUND = "collect_round"  # {widget: n}: bumping n gives the widget a new key, i.e. an empty camera or uploader


# ---- messages and keys --------------------------------------------------------------------------------

def explain(exc: LabError) -> str:
    """The error in the page's language where core says why in a form we can translate, else core's words."""
    if isinstance(exc, col.NameProblem) and exc.reason in NAME_PROBLEMS:
        return t(NAME_PROBLEMS[exc.reason], **exc.values)
    return str(exc)


def flash(place: str, kind: str, text: str) -> None:
    st.session_state.setdefault(FLASH, {}).setdefault(place, []).append((kind, text))


def show_flash(place: str) -> None:
    for kind, text in st.session_state.get(FLASH, {}).pop(place, []):
        if kind == "error":
            st.error(text, icon=":material/error:")
        elif kind == "warning":
            st.warning(text, icon=":material/warning:")
        else:
            st.success(text, icon=":material/check_circle:")


def widget_key(name: str) -> str:
    """`name` with its round: a new round is a new, empty widget."""
    return f"{name}#{st.session_state.setdefault(ROUND, {}).get(name, 0)}"


def next_round(name: str) -> None:
    rounds = st.session_state.setdefault(ROUND, {})
    rounds[name] = rounds.get(name, 0) + 1


def unseen(files) -> list:
    """The uploaded files not stored before, marked as stored now."""
    seen = st.session_state.setdefault(SEEN, set())
    fresh = [f for f in files if f is not None and f.file_id not in seen]
    seen.update(f.file_id for f in fresh)
    return fresh


# ---- choosing a collection ----------------------------------------------------------------------------

def collection_picker() -> col.Collection | None:
    """The collection named in the URL (?collection=) or chosen here; None until one exists."""
    names = col.list_collections()
    linked = st.query_params.get("collection")
    # A collection just made, or one a link names that this session has not shown yet, becomes the choice;
    # otherwise the selectbox keeps what the user picked.
    wanted = st.session_state.pop("_collect_created", None)
    if wanted is None and linked != st.session_state.get("_collect_shown"):
        wanted = linked
    if wanted in names:
        st.session_state["collect_choice"] = wanted
    if not names:
        with st.container(border=True):
            st.markdown(t("**Start a collection.** Name it after what your model will tell apart, then add a "
                          "class for each kind of thing and fill it with photos."))
            _new_collection_form("first")
        return None
    if st.session_state.get("collect_choice") not in names:
        st.session_state["collect_choice"] = names[0]
    row = st.columns([3, 1], vertical_alignment="bottom")
    name = row[0].selectbox(t("Collection"), names, key="collect_choice")
    with row[1].popover(t("New collection"), icon=":material/add:", width="stretch"):
        _new_collection_form("more")
    st.session_state["_collect_shown"] = name
    if linked != name:
        st.query_params["collection"] = name  # a link to this page opens this collection
    try:
        return col.open_collection(name)
    except LabError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


def _new_collection_form(where: str) -> None:
    with st.form(f"collect_new_{where}", clear_on_submit=True, border=False):
        name = st.text_input(t("Name of the new collection"), placeholder=t("e.g. Hand signs"), max_chars=60)
        if st.form_submit_button(t("Create collection"), icon=":material/create_new_folder:", type="primary"):
            try:
                created = col.create_collection(name)
            except LabError as exc:
                st.error(explain(exc), icon=":material/error:")
            else:
                st.session_state["_collect_created"] = created.name
                st.query_params["collection"] = created.name
                st.rerun()


# ---- classes ------------------------------------------------------------------------------------------

def add_class_form(collection: col.Collection) -> None:
    with st.form("collect_add_class", clear_on_submit=True, border=False):
        row = st.columns([3, 1], vertical_alignment="bottom")
        name = row[0].text_input(t("New class"), placeholder=t("e.g. Thumbs up"), max_chars=60,
                                 help=t("Each class is one kind of thing the model learns to recognise."))
        submitted = row[1].form_submit_button(t("Add class"), icon=":material/add:", width="stretch")
    if submitted:
        try:
            added = col.add_class(collection, name)
        except LabError as exc:
            st.error(explain(exc), icon=":material/error:")
        else:
            st.toast(t("Class {name} added: now fill it with photos.", name=added), icon=":material/add_a_photo:")


def class_cards(collection: col.Collection) -> dict[str, int]:
    """A card per class (count, newest photos, webcam and upload); returns the counts."""
    counts = col.counts(collection)
    show_flash("classes")
    if not counts:
        st.info(t("No classes yet. Add one above for each kind of thing the model should tell apart "
                  "(at least two)."), icon=":material/category:")
        return counts
    names = list(counts)
    for start in range(0, len(names), CARDS_PER_ROW):
        columns = st.columns(CARDS_PER_ROW)
        for column, name in zip(columns, names[start:start + CARDS_PER_ROW]):
            with column.container(border=True, key=f"collect_card_{names.index(name)}"):
                _class_card(collection, name, counts[name])
    return counts


def _class_card(collection: col.Collection, name: str, count: int) -> None:
    head = st.columns([4, 1], vertical_alignment="center")
    colour = "green" if count >= col.MIN_IMAGES else "orange"
    amount = t("1 photo") if count == 1 else t("{n} photos", n=count)
    head[0].markdown(f"#### {escape_markdown(name)}\n:{colour}-badge[:material/photo_library: {amount}]")
    with head[1].popover("", icon=":material/more_vert:", help=t("Rename or delete this class")):
        _class_menu(collection, name, count)
    place = f"class:{name}"
    show_flash(place)
    photos = col.image_files(collection, name)[:THUMBNAILS]
    if photos:
        st.image([str(p) for p in photos], width=56)
    if count < col.MIN_IMAGES:
        st.caption(t("{n} more needed to train", n=col.MIN_IMAGES - count))
    source_key = f"collect_src:{collection.name}:{name}"
    source = st.segmented_control(t("Add photos with"), ["webcam", "upload"], key=source_key,
                                  format_func=lambda s: (":material/photo_camera: " + t("Webcam") if s == "webcam"
                                                       else ":material/upload: " + t("Upload photos")),
                                  on_change=_one_camera, args=(source_key,), label_visibility="collapsed",
                                  width="stretch")
    if source == "webcam":
        cam_key = widget_key(f"collect_cam:{collection.name}:{name}")
        st.camera_input(t("Every photo you take is added to {name}", name=name), key=cam_key,
                        on_change=_store_shot, args=(collection, name, cam_key))
    elif source == "upload":
        up_key = widget_key(f"collect_up:{collection.name}:{name}")
        st.file_uploader(t("Photos, or a .zip of photos"), type=UPLOAD_TYPES, accept_multiple_files=True,
                         key=up_key, on_change=_store_uploads, args=(collection, name, up_key))


def _class_menu(collection: col.Collection, name: str, count: int) -> None:
    with st.form(f"collect_rename:{collection.name}:{name}", border=False):
        new = st.text_input(t("Class name"), value=name, max_chars=60)
        if st.form_submit_button(t("Rename class"), icon=":material/edit:") and new.strip() != name:
            _rename(collection, name, new)
            st.rerun()
    if count:
        st.button(t("Remove the newest photo"), key=f"collect_undo:{name}", on_click=_remove_newest,
                  args=(collection, name), icon=":material/undo:")
    sure = st.checkbox(t("Delete {name} with all its photos ({n})", name=name, n=count), key=f"collect_sure:{name}")
    st.button(t("Delete class"), key=f"collect_delete:{name}", on_click=_delete_class, args=(collection, name),
              disabled=not sure, icon=":material/delete:", type="primary")


def escape_markdown(text: str) -> str:
    """A user's name inside Markdown: shown as typed, never as formatting."""
    for char in "\\`*_{}[]()#+-.!|<>:$~":
        text = text.replace(char, "\\" + char)
    return text


# ---- changes (callbacks run before the page is drawn again; renaming runs from its form) -------------

def _one_camera(chosen_key: str) -> None:
    """One class webcam at a time: opening one closes the others."""
    if st.session_state.get(chosen_key) != "webcam":
        return
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith("collect_src:")]:
        if key != chosen_key and st.session_state[key] == "webcam":
            st.session_state[key] = None


def _store_shot(collection: col.Collection, name: str, key: str) -> None:
    shot = st.session_state.get(key)
    fresh = unseen([shot])
    if not fresh:
        return
    try:
        col.add_image(collection, name, fresh[0].getvalue(), t("the camera shot"))
    except LabError as exc:
        flash(f"class:{name}", "error", str(exc))
    next_round(key.rsplit("#", 1)[0])  # a fresh camera, ready for the next shot


def _store_uploads(collection: col.Collection, name: str, key: str) -> None:
    files = unseen(st.session_state.get(key) or [])
    if not files:
        return
    try:
        added = col.add_images(collection, name, [(f.name, f.getvalue()) for f in files])
    except LabError as exc:
        flash(f"class:{name}", "error", str(exc))
        return
    if added.saved:
        flash(f"class:{name}", "success", t("Added 1 photo.") if len(added.saved) == 1
              else t("Added {n} photos.", n=len(added.saved)))
    for message in added.errors[:5]:
        flash(f"class:{name}", "warning", message)
    if len(added.errors) > 5:
        flash(f"class:{name}", "warning", t("…and {n} more files could not be read.", n=len(added.errors) - 5))
    next_round(key.rsplit("#", 1)[0])  # an empty uploader for the next batch


def _rename(collection: col.Collection, old: str, new: str) -> None:
    try:
        renamed = col.rename_class(collection, old, new)
    except LabError as exc:
        flash(f"class:{old}", "error", explain(exc))
        return
    flash(f"class:{renamed}", "success", t("Renamed {old} to {new}.", old=old, new=renamed))


def _remove_newest(collection: col.Collection, name: str) -> None:
    try:
        newest = col.image_files(collection, name)
        if newest:
            col.remove_image(collection, name, newest[0].name)
    except LabError as exc:
        flash(f"class:{name}", "error", str(exc))


def _delete_class(collection: col.Collection, name: str) -> None:
    try:
        col.remove_class(collection, name)
    except LabError as exc:
        flash(f"class:{name}", "error", str(exc))
    else:
        flash("classes", "success", t("Deleted the class {name}.", name=name))
