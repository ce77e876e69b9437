; edgeoss for Windows: a per-user installer (no administrator rights).
;
;   makensis -DVERSION=0.1.0 -DDIST=..\..\dist\edgeoss -DOUTFILE=edgeoss-setup.exe installers\windows\edgeoss.nsi
;
; DIST is the onedir build from a Windows machine (build\build.sh there, or the same
; PyInstaller spec): edgeoss.exe and _internal\. makensis itself also runs on Linux
; (Debian's nsis package), which is how the script is checked in CI.
Unicode true
!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef DIST
  !define DIST "..\..\dist\edgeoss"
!endif
!ifndef OUTFILE
  !define OUTFILE "edgeoss-${VERSION}-setup.exe"
!endif
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\edgeoss"

Name "edgeoss ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\edgeoss"
InstallDirRegKey HKCU "Software\edgeoss" "InstallDir"
SetCompressor /SOLID lzma

!include "MUI2.nsh"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\edgeoss.exe"
!define MUI_FINISHPAGE_RUN_PARAMETERS "tray"
!define MUI_FINISHPAGE_RUN_TEXT "Start edgeoss (tray)"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "edgeoss (required)" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${DIST}\*.*"
  WriteRegStr HKCU "Software\edgeoss" "InstallDir" "$INSTDIR"
  CreateDirectory "$SMPROGRAMS\edgeoss"
  CreateShortcut "$SMPROGRAMS\edgeoss\edgeoss.lnk" "$INSTDIR\edgeoss.exe" "tray"
  CreateShortcut "$SMPROGRAMS\edgeoss\Uninstall edgeoss.lnk" "$INSTDIR\uninstall.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "edgeoss"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "edgeoss developers"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

; The same value `edgeoss tray`'s "Start at login" writes, so either can turn it off.
Section /o "Start edgeoss at login" SecLogin
  WriteRegStr HKCU "${RUN_KEY}" "edgeoss" '"$INSTDIR\edgeoss.exe" tray'
SectionEnd

Section "Uninstall"
  DeleteRegValue HKCU "${RUN_KEY}" "edgeoss"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\edgeoss"
  Delete "$SMPROGRAMS\edgeoss\edgeoss.lnk"
  Delete "$SMPROGRAMS\edgeoss\Uninstall edgeoss.lnk"
  RMDir "$SMPROGRAMS\edgeoss"
  RMDir /r "$INSTDIR"
  ; Models and settings stay in %LOCALAPPDATA%\edgeoss: remove them with `edgeoss rm` first if wanted.
SectionEnd
