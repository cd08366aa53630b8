# xnai_embed_web_ui(<target>): builds web/ (npm ci + Vite) and adds the
# generated table of its files (cmake/embed_web.cmake) to <target>.
#
#   web/package-lock.json ─ npm ci ─► web/node_modules   (stamp: <build>/web/npm-ci.stamp)
#   web/index.html, src/, public/ ─ vite build ─► <build>/web/dist   (stamp: dist.stamp)
#   <build>/web/dist ─ cmake -P embed_web.cmake ─► <build>/web/web_assets_data.cc
#
# With XNAI_WEB_UI=OFF no node/npm is needed: the table is empty and the
# server answers 404 for the UI.
function(xnai_embed_web_ui target)
  set(web_dir ${PROJECT_SOURCE_DIR}/web)
  set(out_dir ${CMAKE_BINARY_DIR}/web)
  set(dist_dir ${out_dir}/dist)
  set(generated ${out_dir}/web_assets_data.cc)
  set(embed_script ${PROJECT_SOURCE_DIR}/cmake/embed_web.cmake)
  file(MAKE_DIRECTORY ${out_dir})

  if(NOT XNAI_WEB_UI)
    execute_process(COMMAND ${CMAKE_COMMAND} -DOUTPUT=${generated} -P ${embed_script}
                    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
    target_sources(${target} PRIVATE ${generated})
    return()
  endif()

  find_program(XNAI_NODE node)
  find_program(XNAI_NPM npm)
  if(NOT XNAI_NODE OR NOT XNAI_NPM)
    message(FATAL_ERROR
      "The web UI needs Node.js and npm at build time, and they were not found. "
      "Run scripts/install-deps (it installs them), or configure with -DXNAI_WEB_UI=OFF "
      "to build without the UI.")
  endif()

  file(GLOB_RECURSE web_sources CONFIGURE_DEPENDS
       ${web_dir}/src/* ${web_dir}/public/*)
  add_custom_command(
    OUTPUT ${out_dir}/npm-ci.stamp
    COMMAND ${XNAI_NPM} ci --no-audit --no-fund --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${out_dir}/npm-ci.stamp
    DEPENDS ${web_dir}/package.json ${web_dir}/package-lock.json
    WORKING_DIRECTORY ${web_dir}
    COMMENT "web: npm ci (pinned by web/package-lock.json)"
    VERBATIM)
  add_custom_command(
    OUTPUT ${out_dir}/dist.stamp
    COMMAND ${XNAI_NPM} run --silent build -- --outDir ${dist_dir} --emptyOutDir --logLevel warn
    COMMAND ${CMAKE_COMMAND} -E touch ${out_dir}/dist.stamp
    DEPENDS ${out_dir}/npm-ci.stamp ${web_sources} ${web_dir}/index.html
            ${web_dir}/vite.config.mjs ${web_dir}/tsconfig.json
    WORKING_DIRECTORY ${web_dir}
    COMMENT "web: vite build -> ${dist_dir}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${generated}
    COMMAND ${CMAKE_COMMAND} -DDIST_DIR=${dist_dir} -DOUTPUT=${generated} -P ${embed_script}
    DEPENDS ${out_dir}/dist.stamp ${embed_script}
    COMMENT "web: embedding ${dist_dir}"
    VERBATIM)
  target_sources(${target} PRIVATE ${generated})
endfunction()
