#!/bin/sh
# Drop the sample partners' files into the inbox, as partners would, for `gateway run --once`.
# X12 and CSV partners' files go to inbox/<partner>/; cXML files to inbox/ itself (the sender is
# found from the cXML credential); the hospital's own 850 to inbox/ (no profile: base map);
# plus a zero-byte file and a non-EDI file, which are quarantined with a reason.
#
#   sh samples/drop-samples.sh [DEPLOYMENT]   (default: this repository, whose folder is a deployment)
#
# Into another deployment (one made with `gateway init`, say), the files of partners it has no profile
# for are quarantined as from an unknown partner: copy the profiles from partners/ too to process them.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
home=$(cd "${1:-$repo}" && pwd)
inbox="$home/inbox"
mkdir -p "$inbox"
for dir in "$repo"/partners/*/cases; do
  partner=$(basename "$(dirname "$dir")")
  for f in "$dir"/*.edi "$dir"/*.x12 "$dir"/*.csv; do
    [ -f "$f" ] || continue
    mkdir -p "$inbox/$partner"
    cp "$f" "$inbox/$partner/"
  done
  for f in "$dir"/*.xml; do
    [ -f "$f" ] && cp "$f" "$inbox/"
  done
done
cp "$repo/samples/x12/850-4010-mercy-to-medsupply.edi" "$inbox/"
: > "$inbox/empty-upload.edi"
printf 'Please find attached our price list.\n' > "$inbox/not-edi.txt"
echo "dropped $(find "$inbox" -type f ! -name .gitkeep | wc -l) files into $inbox/"
