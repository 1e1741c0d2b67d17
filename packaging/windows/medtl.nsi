; medtl setup for Windows (NSIS 3): installs the one-folder bundle (dist\medtl from `pyinstaller packaging\medtl.spec`
; on Windows: medtl.exe, the console CLI; medtl-app.exe, the app without a console window; _internal\).
;
;   makensis -DVERSION=0.1.0 -DPAYLOAD=%CD%\dist\medtl -DOUTFILE=%CD%\dist\medtl-0.1.0-setup.exe packaging\windows\medtl.nsi
;
; VERSION is pyproject.toml's (packaging/README.md gives the release steps). -DCHECK stores the payload uncompressed:
; `make installer-nsis-check` compiles this script against the Linux bundle as a stand-in, to check the script.
;
; Per-user (no administrator rights; %LOCALAPPDATA%\Programs\medtl) or all users (Program Files), chosen on a page
; (MultiUser.nsh) or with /AllUsers or /CurrentUser on the command line. Start-menu entry, a "DICOM image" (.dcm)
; association and "Open in medtl" on folders, an entry in Apps & features, and an uninstaller that removes what it
; installed. Users' projects, runs, settings and caches live in their own folders (%LOCALAPPDATA%\medtl) and stay.

Unicode true
!ifndef VERSION
  !error "give the version: makensis -DVERSION=X.Y.Z (pyproject.toml's)"
!endif
!ifndef PAYLOAD
  !error "give the bundle folder: makensis -DPAYLOAD=dist/medtl"
!endif
!ifndef OUTFILE
  !define OUTFILE "medtl-${VERSION}-setup.exe"
!endif
!define RESOURCES "../../resources"  ; makensis works in this script's folder: give PAYLOAD and OUTFILE as absolute paths
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\medtl"
!define SETTINGS_KEY "Software\medtl"

!define MULTIUSER_EXECUTIONLEVEL Highest
!define MULTIUSER_MUI
!define MULTIUSER_INSTALLMODE_COMMANDLINE
!define MULTIUSER_USE_PROGRAMFILES64
!define MULTIUSER_INSTALLMODE_INSTDIR "medtl"
!define MULTIUSER_INSTALLMODE_DEFAULT_REGISTRY_KEY "${SETTINGS_KEY}"
!define MULTIUSER_INSTALLMODE_DEFAULT_REGISTRY_VALUENAME "InstallMode"
!define MULTIUSER_INSTALLMODE_INSTDIR_REGISTRY_KEY "${SETTINGS_KEY}"
!define MULTIUSER_INSTALLMODE_INSTDIR_REGISTRY_VALUENAME "InstallDir"
!include MultiUser.nsh
!include MUI2.nsh

Name "medtl ${VERSION}"
OutFile "${OUTFILE}"
!ifdef CHECK
  SetCompress off
!else
  SetCompressor /SOLID lzma
!endif
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "medtl"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "medtl setup"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "medtl developers, Apache-2.0; bundled components under their own licences"

!define MUI_ICON "${RESOURCES}/icons/app.ico"
!define MUI_UNICON "${RESOURCES}/icons/app.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\medtl-app.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Open medtl"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_LICENSE "${RESOURCES}/LICENSES.md"
!insertmacro MULTIUSER_PAGE_INSTALLMODE
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  !insertmacro MULTIUSER_INIT
FunctionEnd

Function un.onInit
  !insertmacro MULTIUSER_UNINIT
FunctionEnd

Section "medtl" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}/*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; $SMPROGRAMS and SHCTX are the user's or all users' (MultiUser.nsh sets the shell context for the chosen mode).
  CreateShortcut "$SMPROGRAMS\medtl.lnk" "$INSTDIR\medtl-app.exe" "" "$INSTDIR\medtl-app.exe" 0

  WriteRegStr SHCTX "Software\Classes\.dcm\OpenWithProgids" "medtl.dicom" ""
  WriteRegStr SHCTX "Software\Classes\medtl.dicom" "" "DICOM image"
  WriteRegStr SHCTX "Software\Classes\medtl.dicom\DefaultIcon" "" "$INSTDIR\medtl-app.exe,0"
  WriteRegStr SHCTX "Software\Classes\medtl.dicom\shell\open\command" "" '"$INSTDIR\medtl-app.exe" "%1"'
  WriteRegStr SHCTX "Software\Classes\Directory\shell\medtl" "" "Open in medtl"
  WriteRegStr SHCTX "Software\Classes\Directory\shell\medtl" "Icon" "$INSTDIR\medtl-app.exe,0"
  WriteRegStr SHCTX "Software\Classes\Directory\shell\medtl\command" "" '"$INSTDIR\medtl-app.exe" "%V"'

  WriteRegStr SHCTX "${SETTINGS_KEY}" "InstallMode" "$MultiUser.InstallMode"
  WriteRegStr SHCTX "${SETTINGS_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "DisplayName" "medtl"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "Publisher" "medtl developers"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\medtl-app.exe,0"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe" /$MultiUser.InstallMode'
  WriteRegStr SHCTX "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /$MultiUser.InstallMode /S'
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" "NoRepair" 1
  SectionGetSize ${SecMain} $0
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" "EstimatedSize" $0
SectionEnd

Section "Uninstall"
  Delete "$SMPROGRAMS\medtl.lnk"
  ; Only what the setup put there: never a recursive delete of $INSTDIR itself, which a user may have pointed elsewhere.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\medtl.exe"
  Delete "$INSTDIR\medtl-app.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  DeleteRegValue SHCTX "Software\Classes\.dcm\OpenWithProgids" "medtl.dicom"
  DeleteRegKey SHCTX "Software\Classes\medtl.dicom"
  DeleteRegKey SHCTX "Software\Classes\Directory\shell\medtl"
  DeleteRegKey SHCTX "${SETTINGS_KEY}"
  DeleteRegKey SHCTX "${UNINSTALL_KEY}"
SectionEnd
